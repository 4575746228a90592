// Money, counts and dates as people read them. Money comes from the API as exact decimal
// strings and stays a string: digits are grouped and padded to the currency's minor unit,
// never passed through a float. Sums are exact (BigInt over the scaled digits).

/** ISO 4217 minor units that are not 2 (the API validates the code). */
const DIGITS: Record<string, number> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0,
  UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
  CLF: 4, UYW: 4,
};

export function currencyDigits(currency: string): number {
  return DIGITS[currency.toUpperCase()] ?? 2;
}

const groupSep = (() => {
  const parts = new Intl.NumberFormat(undefined).formatToParts(1234567);
  return parts.find((p) => p.type === 'group')?.value ?? ',';
})();
const decimalSep = (() => {
  const parts = new Intl.NumberFormat(undefined).formatToParts(1.5);
  return parts.find((p) => p.type === 'decimal')?.value ?? '.';
})();

function group(int: string): string {
  return int.replace(/\B(?=(\d{3})+(?!\d))/g, groupSep);
}

/** `"1234.5"`, `"USD"` → `"1,234.50 USD"` (exact; the currency's own digits). */
export function formatMoney(amount: string | null | undefined, currency: string): string {
  if (amount === null || amount === undefined || amount === '') return '—';
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(amount).trim());
  if (!m) return `${amount} ${currency}`;
  const [, sign, int, frac = ''] = m;
  const digits = currencyDigits(currency);
  // The API already scales to the minor unit; extra zeros are dropped, missing ones added.
  let f = frac.padEnd(digits, '0');
  if (f.length > digits && /^0*$/.test(f.slice(digits))) f = f.slice(0, digits);
  const num = group(int.replace(/^0+(?=\d)/, '')) + (f.length ? decimalSep + f : '');
  return `${sign ? '−' : ''}${num} ${currency.toUpperCase()}`;
}

function scaled(amount: string, scale: number): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount.trim());
  if (!m) throw new Error(`not a decimal: ${amount}`);
  const frac = (m[3] ?? '').padEnd(scale, '0').slice(0, scale);
  const v = BigInt(m[2] + frac);
  return m[1] ? -v : v;
}

/** Exact sum of decimal strings, with `scale` fraction digits. */
export function sumDecimals(amounts: string[], scale: number): string {
  let total = 0n;
  for (const a of amounts) total += scaled(a, scale);
  const neg = total < 0n;
  const s = (neg ? -total : total).toString().padStart(scale + 1, '0');
  const int = scale ? s.slice(0, -scale) : s;
  const frac = scale ? '.' + s.slice(-scale) : '';
  return (neg ? '-' : '') + int + frac;
}

export function isPositive(amount: string): boolean {
  return /^\d*\.?\d*$/.test(amount) && /[1-9]/.test(amount);
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return group(String(n));
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });

/** The viewer's local time, and the UTC time for a tooltip. */
export function formatDate(iso: string | null | undefined): { local: string; utc: string } {
  if (!iso) return { local: '—', utc: '' };
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return { local: iso, utc: '' };
  return { local: dateFmt.format(d), utc: d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC') };
}

/** A calendar day (`2026-12-01`) as a date, not shifted by the time zone. */
export function formatDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  return Number.isNaN(d.getTime()) ? day : dayFmt.format(d);
}
