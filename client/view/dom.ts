// Small DOM helpers shared by the views. Data only ever reaches the page through textContent and
// attributes set here, never through innerHTML: event text stays text (docs/design.md, "Sessions, users, security").

/** Creates an element with a class and, optionally, text. */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const created = document.createElement(tag);
  if (className) created.className = className;
  if (text !== undefined) created.textContent = text;
  return created;
}

/** Sets text only when it differs, so an unchanged value costs no DOM write (and no layout). */
export function setText(target: Node, text: string): void {
  if (target.textContent !== text) target.textContent = text;
}

export function setAttribute(target: Element, name: string, value: string): void {
  if (target.getAttribute(name) !== value) target.setAttribute(name, value);
}

/** Finds a required element of a page; a missing one is a build mistake worth failing loudly on. */
export function required<T extends Element>(root: ParentNode, selector: string, type: new () => T): T {
  const found = root.querySelector(selector);
  if (!(found instanceof type)) throw new Error(`page is missing ${selector}`);
  return found;
}

/**
 * Makes `parent`'s children exactly `wanted`, in order, moving only what is out of place: a keyed list
 * update that leaves unchanged rows alone.
 */
export function reconcileChildren(parent: Element, wanted: readonly Element[]): void {
  let cursor = parent.firstElementChild;
  for (const child of wanted) {
    if (child === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      parent.insertBefore(child, cursor);
    }
  }
  while (cursor) {
    const next = cursor.nextElementSibling;
    cursor.remove();
    cursor = next;
  }
}
