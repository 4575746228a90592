// The app: who is signed in (`GET /auth/me`), the frame (skip link, header, navigation,
// main landmark) and the page for the current path. Partners and admins see their own
// pages; a `401` anywhere goes back to sign-in.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, get, post, slug, whenSignedOut } from './api';
import { Link, Loading, ErrorNotice } from './components/ui';
import { match, navigate, useLocation } from './router';
import { SignIn } from './pages/signin/signin';
import { PartnerHome } from './pages/partner/home';
import { PartnerLinks } from './pages/partner/links';
import { PartnerCommissions } from './pages/partner/commissions';
import { PartnerPayouts } from './pages/partner/payouts';
import { PartnerProfile } from './pages/partner/profile';
import { PartnerKeys } from './pages/partner/keys';
import { AdminOverview } from './pages/admin/overview';
import { AdminPartners, AdminPartner } from './pages/admin/partners';
import { AdminCampaigns, AdminCampaign } from './pages/admin/campaigns';
import { AdminCommissions } from './pages/admin/commissions';
import { AdminPayouts } from './pages/admin/payouts';
import { AdminWebhooks, AdminWebhook } from './pages/admin/webhooks';
import { AdminAdmins } from './pages/admin/admins';
import { AdminSettings } from './pages/admin/settings';

export interface Me {
  role: 'admin' | 'partner';
  partnerId?: string | null;
  principal: { id: string; email?: string | null; name?: string | null };
}

type Route = [pattern: string, title: string, render: (p: Record<string, string>, me: Me) => ComponentChildren, inNav: boolean];

const PARTNER_ROUTES: Route[] = [
  ['/', 'Dashboard', (_, me) => <PartnerHome me={me} />, true],
  ['/links', 'Links', (_, me) => <PartnerLinks me={me} />, true],
  ['/commissions', 'Commissions', (_, me) => <PartnerCommissions me={me} />, true],
  ['/payouts', 'Payouts', (_, me) => <PartnerPayouts me={me} />, true],
  ['/profile', 'Profile', (_, me) => <PartnerProfile me={me} />, true],
  ['/api-keys', 'API keys', (_, me) => <PartnerKeys me={me} />, true],
];

const ADMIN_ROUTES: Route[] = [
  ['/', 'Overview', () => <AdminOverview />, true],
  ['/partners', 'Partners', () => <AdminPartners />, true],
  ['/partners/:id', 'Partner', (p) => <AdminPartner id={p.id} />, false],
  ['/campaigns', 'Campaigns', () => <AdminCampaigns />, true],
  ['/campaigns/new', 'New campaign', () => <AdminCampaign id={null} />, false],
  ['/campaigns/:id', 'Campaign', (p) => <AdminCampaign id={p.id} />, false],
  ['/commissions', 'Commissions', () => <AdminCommissions />, true],
  ['/payouts', 'Payouts', () => <AdminPayouts />, true],
  ['/webhooks', 'Webhooks', () => <AdminWebhooks />, true],
  ['/webhooks/:id', 'Webhook', (p) => <AdminWebhook id={p.id} />, false],
  ['/admins', 'Admins', () => <AdminAdmins />, true],
  ['/settings', 'Settings', () => <AdminSettings />, true],
];

export function App() {
  const [path] = useLocation();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);

  const loadMe = () =>
    get<Me>('/auth/me').then(
      (m) => {
        setMe(m);
        setError(null);
      },
      (e: ApiError) => {
        if (e.status === 401) setMe(null);
        else setError(e);
      },
    );
  useEffect(() => {
    loadMe();
    return whenSignedOut(() => setMe(null));
  }, []);

  if (error) {
    return (
      <main id="main" class="narrow">
        <h1>OpenPartner</h1>
        <ErrorNotice error={error} />
      </main>
    );
  }
  if (me === undefined) {
    return (
      <main id="main" class="narrow">
        <Loading />
      </main>
    );
  }
  if (me === null || path === '/login') {
    return <SignIn signedIn={me !== null} onSignedIn={() => loadMe().then(() => navigate('/', true))} />;
  }

  const routes = me.role === 'admin' ? ADMIN_ROUTES : PARTNER_ROUTES;
  let page: ComponentChildren = null;
  for (const [pattern, , render] of routes) {
    const params = match(pattern, path);
    if (params) {
      page = render(params, me);
      break;
    }
  }
  const signOut = async () => {
    try {
      await post('/auth/signout');
    } finally {
      setMe(null);
      navigate('/login', true);
    }
  };
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          // The page's <base href> would make `#main` another page: focus it here instead.
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">OpenPartner{slug ? ` · ${slug}` : ''}</span>
        <nav aria-label="Main">
          <ul>
            {routes
              .filter((r) => r[3])
              .map(([pattern, title]) => {
                const current = pattern === '/' ? path === '/' : path === pattern || path.startsWith(pattern + '/');
                return (
                  <li key={pattern}>
                    <Link to={pattern} aria-current={current ? 'page' : undefined}>
                      {title}
                    </Link>
                  </li>
                );
              })}
          </ul>
        </nav>
        <div class="who">
          <span>
            {me.principal.name || me.principal.email} ({me.role})
          </span>
          <button type="button" class="secondary small" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" key={path} tabIndex={-1}>
        {page ?? (
          <>
            <h1>Page not found</h1>
            <p>
              There is no page at this address. <Link to="/">Go to the start page</Link>.
            </p>
          </>
        )}
      </main>
    </>
  );
}
