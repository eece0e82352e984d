// Board overview entry (`/`). The zod setting comes first: it must precede every schema (see the module).
import './zod-jitless.ts';
import './styles/dashboard.css';
import { startOverview } from './overview-page.ts';

void startOverview(document);
