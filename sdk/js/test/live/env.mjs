// The running stack the live tests talk to (scripts/test-sdk starts one and sets these).
export const baseUrl = process.env.OPENPARTNER_BASE_URL;
export const apiKey = process.env.OPENPARTNER_API_KEY;
export const skip = !baseUrl || !apiKey ? 'OPENPARTNER_BASE_URL / OPENPARTNER_API_KEY not set (scripts/test-sdk sets them)' : false;
/** Unique per run, so runs against a reused stack do not collide. */
export const run = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

/** Records a click through the real router without following the redirect; answers the click id. */
export async function click(routerUrl, headers = {}) {
  const res = await fetch(routerUrl, { redirect: 'manual', headers });
  if (res.status !== 302) throw new Error(`GET ${routerUrl}: ${res.status} ${await res.text()}`);
  const location = res.headers.get('location');
  const cref = new URL(location).searchParams.get('cref');
  return { cref, location, setCookie: res.headers.get('set-cookie') };
}
