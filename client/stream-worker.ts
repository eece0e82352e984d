// SharedWorker entry: the browser's one EventSource, shared by every dashboard tab (see stream/connect.ts).
import './zod-jitless.ts';
import { checkAccess } from './http/api.ts';
import { tabMessageSchema } from './stream/protocol.ts';
import { StreamHub, type HubSubscriber } from './stream/stream-hub.ts';

const hub = new StreamHub({ openSource: (url) => new EventSource(url), checkAccess });

addEventListener('connect', (event) => {
  if (!(event instanceof MessageEvent)) return;
  const port = event.ports[0];
  if (!port) return;
  const subscriber: HubSubscriber = { send: (message) => port.postMessage(message) };
  port.addEventListener('message', (message) => {
    const parsed = tabMessageSchema.safeParse(message.data);
    if (!parsed.success) return;
    const command = parsed.data;
    switch (command.type) {
      case 'subscribe':
        hub.subscribe(subscriber, command.boards, command.topics);
        break;
      case 'logout':
        hub.logout();
        break;
      case 'bye':
        hub.unsubscribe(subscriber);
        break;
      case 'reconnect':
        hub.reconnect();
        break;
    }
  });
  // Chromium tells a port when its other end is gone (a tab that crashed never says bye).
  port.addEventListener('close', () => hub.unsubscribe(subscriber));
  port.start();
});
