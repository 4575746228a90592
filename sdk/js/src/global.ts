/**
 * The `<script>` tag build (`dist/openpartner.global.js`): defines `window.OpenPartner`,
 * the same class the ES module exports, so a page can do
 *
 *   <script src=".../openpartner.global.js"></script>
 *   <script>const op = OpenPartner.init({ apiUrl: 'https://partners.example.com/api/t/acme' });</script>
 *
 * `OpenPartner.OpenPartnerError` and `OpenPartner.VERSION` ride along.
 */
import { OpenPartner, OpenPartnerError, VERSION } from './browser.js';

const g = OpenPartner as typeof OpenPartner & {
  OpenPartner: typeof OpenPartner;
  OpenPartnerError: typeof OpenPartnerError;
  VERSION: string;
};
g.OpenPartner = OpenPartner;
g.OpenPartnerError = OpenPartnerError;
g.VERSION = VERSION;
(globalThis as unknown as { OpenPartner: typeof g }).OpenPartner = g;
