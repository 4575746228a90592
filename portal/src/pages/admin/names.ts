// Partner names for tables that carry partner ids (the first 500 partners, newest first).
import { useEffect, useState } from 'preact/hooks';
import { get, type Page, type Schemas } from '../../api';

export function usePartnerNames(): Map<string, string> {
  const [names, setNames] = useState(new Map<string, string>());
  useEffect(() => {
    get<Page<Schemas['PartnerView']>>('/partners?limit=500').then(
      (p) => setNames(new Map(p.data.map((x) => [x.id, x.name || x.email]))),
      () => undefined,
    );
  }, []);
  return names;
}
