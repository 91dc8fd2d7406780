// A relying party on openid-client: discovery, authorization code + PKCE, ID token
// validation, userinfo and refresh. It prints the authorization URL as one JSON line, reads
// the callback URL (where the provider sent the browser) from stdin, and prints the results.
import * as readline from "node:readline";
import * as client from "openid-client";

const [issuer, clientId, clientSecret, redirectUri] = process.argv.slice(2);

const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");

try {
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    undefined,
    client.ClientSecretBasic(clientSecret),
    { execute: [client.allowInsecureRequests] }, // the test provider runs on http://127.0.0.1
  );
  const verifier = client.randomPKCECodeVerifier();
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile email",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    nonce,
    state,
    max_age: "600",
  });
  say({ authorization_url: url.href });

  const callback = new URL(await nextLine());
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    maxAge: 600,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const again = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
  say({
    id_token_claims: claims,
    userinfo,
    refreshed_claims: refreshed.claims() ?? null,
    rotated: refreshed.refresh_token !== tokens.refresh_token,
    userinfo_after_refresh: again,
  });
} catch (error) {
  say({ error: String(error), code: error.code ?? null, cause: String(error.cause ?? "") });
  process.exitCode = 1;
} finally {
  lines.close();
}
