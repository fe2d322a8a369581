// The first-run page, #/pbinstall/<token>: the one-time link `keepbase serve` prints while no
// superuser exists (as PocketBase does). The token is a short, non-refreshable auth token of a
// placeholder superuser; it is good for exactly one thing here, creating the real first superuser,
// after which the server deletes the placeholder and the token stops working.
//
// The token only ever travels in an Authorization header. It is read from the URL fragment (which
// browsers never send to a server), then at once taken out of the address bar with
// history.replaceState, so it does not linger in the history, bookmarks or screenshots; for a
// reload of the page it is kept in this tab's sessionStorage until it is used or found dead.

import { request } from "./api.js";
import { $, clearFieldErrors, flattenErrors, setText, showFieldError } from "./dom.js";

const INSTALL_KEY = "keepbase.dashboard.install";
const SUPERUSERS = "/api/collections/_superusers";

const install = {
  token: "",
  signedIn: null, // app.js's startSession(auth, identity)
  wired: false,
};

// The setup token when the address is #/pbinstall[/<token>] ("" when there is none), else null.
export function installRoute() {
  const match = /^#\/pbinstall(?:\/([^/]*))?\/?$/.exec(window.location.hash);
  if (!match) return null;
  if (match[1] !== undefined) {
    let token = "";
    try {
      token = decodeURIComponent(match[1]);
    } catch (err) {
      token = "";
    }
    sessionStorage.setItem(INSTALL_KEY, token);
    history.replaceState(history.state, "", `${location.pathname}${location.search}#/pbinstall`);
  }
  return sessionStorage.getItem(INSTALL_KEY) || "";
}

// A dead token: the server answers 401/403 for an expired or tampered token and for one whose
// placeholder superuser was deleted (a real superuser exists now).
function isDeadToken(err) {
  return err.status === 401 || err.status === 403;
}

// which: "form", "expired", "created" (but not signed in) or "" (checking)
function showState(which) {
  $("install-form").hidden = which !== "form";
  $("install-expired").hidden = which !== "expired";
  $("install-to-login").hidden = which !== "expired" && which !== "created";
}

function showExpired() {
  sessionStorage.removeItem(INSTALL_KEY);
  install.token = "";
  setText("install-status", "");
  showState("expired");
}

function leave() {
  window.location.hash = "#/"; // the router shows the sign-in page (or the dashboard)
}

function wire() {
  if (install.wired) return;
  install.wired = true;
  $("install-form").addEventListener("submit", submit);
  $("install-to-login").addEventListener("click", leave);
}

export async function showInstall(token, signedIn) {
  wire();
  install.token = token;
  install.signedIn = signedIn;
  $("install-view").hidden = false;
  $("install-form").reset();
  clearFieldErrors($("install-form"));
  setText("install-error", "");
  showState("");
  if (!token) {
    showExpired();
    return;
  }
  setText("install-status", "Checking the setup link\u2026");
  try {
    // any superuser-only read tells whether the token still works; it changes nothing
    await request("GET", `${SUPERUSERS}/records?perPage=1&skipTotal=1`, undefined, { token });
  } catch (err) {
    if (install.token !== token) return; // another link was opened meanwhile
    if (isDeadToken(err)) showExpired();
    else setText("install-status", `The setup link could not be checked: ${err.message}`);
    return;
  }
  if (install.token !== token) return;
  setText("install-status", "");
  showState("form");
  $("install-email").focus();
}

async function submit(event) {
  event.preventDefault();
  const form = $("install-form");
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  const passwordConfirm = form.elements.passwordConfirm.value;
  clearFieldErrors(form);
  setText("install-error", "");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    try {
      await request("POST", `${SUPERUSERS}/records`, { email, password, passwordConfirm }, { token: install.token });
    } catch (err) {
      if (isDeadToken(err)) {
        showExpired();
        return;
      }
      const unplaced = [];
      for (const [name, message] of flattenErrors(err.data)) {
        if (!showFieldError(name, message, "install-")) unplaced.push(`${name}: ${message}`);
      }
      setText("install-error", [err.message, ...unplaced].join("\n"));
      return;
    }
    // the placeholder superuser, and with it the setup token, is gone now
    sessionStorage.removeItem(INSTALL_KEY);
    install.token = "";
    let auth;
    try {
      auth = await request("POST", `${SUPERUSERS}/auth-with-password`, { identity: email, password });
    } catch (err) {
      showState("created");
      setText("install-status", `The superuser ${email} was created, but signing in failed: ${err.message}`);
      return;
    }
    form.reset();
    history.replaceState(history.state, "", `${location.pathname}${location.search}`);
    await install.signedIn(auth, email);
  } finally {
    button.disabled = false;
  }
}
