// Login page entry (`/login`).
import './zod-jitless.ts';
import './styles/login.css';
import { startLoginPage } from './login-page.ts';

startLoginPage(document);
