// Public status page entry (`/status/<board>`): takes over the server-rendered markup and goes live.
import './zod-jitless.ts';
import './styles/status.css';
import { startStatusPage } from './status-page.ts';

startStatusPage(document);
