// Sign-in with a magic link: the email form, "check your mail", and the link's landing
// (`/login?token=…`), which verifies the token (the session cookie is set by the API) and
// goes home.
import { useEffect, useRef, useState } from 'preact/hooks';
import { post, slug } from '../../api';
import { ActionForm, Field } from '../../components/form';
import { ErrorNotice, useAction } from '../../components/ui';

export function SignIn(props: { signedIn: boolean; onSignedIn: () => void }) {
  const token = new URLSearchParams(location.search).get('token');
  const [sentTo, setSentTo] = useState<string | null>(null);
  const act = useAction();
  const { error, busy, run } = act;
  const verifying = useRef(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    document.title = 'Sign in · OpenPartner';
    heading.current?.focus();
    if (token && !verifying.current) {
      verifying.current = true;
      run(async () => {
        await post('/auth/magic/verify', { token });
        props.onSignedIn();
      });
    }
  }, []);
  useEffect(() => heading.current?.focus(), [sentTo]);

  return (
    <main id="main" class="narrow signin">
      <p class="brand">OpenPartner{slug ? ` · ${slug}` : ''}</p>
      {token ? (
        <>
          <h1 ref={heading} tabIndex={-1}>
            Signing you in
          </h1>
          {busy && <p role="status">Checking your sign-in link…</p>}
          {error && (
            <>
              <ErrorNotice error={error} />
              <p>
                Sign-in links work once and expire after 15 minutes. <a href="./login">Ask for a new link</a>.
              </p>
            </>
          )}
        </>
      ) : sentTo ? (
        <>
          <h1 ref={heading} tabIndex={-1}>
            Check your mail
          </h1>
          <p role="status">
            If <strong>{sentTo}</strong> has an account here, we sent it a sign-in link. It works once, for 15 minutes.
          </p>
          <button type="button" class="secondary" onClick={() => setSentTo(null)}>
            Use another address
          </button>
        </>
      ) : (
        <>
          <h1 ref={heading} tabIndex={-1}>
            Sign in
          </h1>
          {props.signedIn && <p>You are signed in already; asking for a link signs you in again.</p>}
          <p>Enter your email address and we will mail you a sign-in link. No password needed.</p>
          <ActionForm
            action={act}
            submit="Email me a sign-in link"
            onSubmit={async ({ email }) => {
              await post('/auth/magic/request', { email });
              setSentTo(email);
            }}
          >
            <Field label="Email address">
              <input name="email" type="email" autoComplete="email" required />
            </Field>
          </ActionForm>
          <ErrorNotice error={error} />
        </>
      )}
    </main>
  );
}
