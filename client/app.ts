// Minimal live view: opens the stream and lists events as they arrive (the full dashboard comes later).
import { envelopeSchema } from '../shared/events.ts';
import './app.css';

const log = document.querySelector<HTMLOListElement>('#log');
const connection = document.querySelector<HTMLElement>('#connection');
const source = new EventSource('/events');

source.addEventListener('open', () => {
  if (connection) connection.textContent = 'live';
});
source.addEventListener('error', () => {
  if (connection)
    connection.textContent = source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting';
});
for (const type of ['status', 'metric', 'event'] as const) {
  source.addEventListener(type, (message) => {
    const parsed = envelopeSchema.safeParse(JSON.parse(message.data as string));
    if (!parsed.success || !log) return;
    const item = document.createElement('li');
    item.textContent = `${new Date(parsed.data.ts).toLocaleTimeString()} ${JSON.stringify(parsed.data)}`;
    log.prepend(item);
    while (log.children.length > 200) log.lastElementChild?.remove();
  });
}
