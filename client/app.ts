// Board view entry (`/b/<board>`). The zod setting comes first: it must precede every schema (see the module).
import './zod-jitless.ts';
import 'uplot/dist/uPlot.min.css';
import './styles/dashboard.css';
import { startDashboard } from './dashboard.ts';

void startDashboard(document);
