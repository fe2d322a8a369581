// keepbase admin dashboard: a plain client of the public HTTP API.
//
// Safety rule for this file: everything shown comes from the API and may be attacker-controlled,
// so text only ever reaches the page through textContent, text nodes, input values and
// setAttribute on non-executing attributes. There is no innerHTML, no eval and no inline code
// (the page's CSP forbids them and enforces Trusted Types as a second line of defence).

import { request } from "./api.js";
import { $, clearFieldErrors, el, flattenErrors, setText, showFieldError } from "./dom.js";
import { installRoute, showInstall } from "./install.js";

const TOKEN_KEY = "keepbase.dashboard.token";
const EMAIL_KEY = "keepbase.dashboard.email";
const PER_PAGE = 20;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  collections: [],
  current: null, // the selected collection object
  page: 1,
  totalPages: 1,
  sort: "",
  filter: "",
  fileToken: "",
  editing: null, // the record being edited, or null when creating
};

// ------------------------------------------------------------------ API

// The signed-in superuser's calls; a 401 on them means the session is over.
async function api(method, path, body, { auth = true } = {}) {
  const sendToken = auth && Boolean(state.token);
  try {
    return await request(method, path, body, { token: sendToken ? state.token : "" });
  } catch (err) {
    if (err.status === 401 && sendToken) signOut("Your session has expired; please sign in again.");
    throw err;
  }
}

function collectionPath(coll) {
  return `/api/collections/${encodeURIComponent(coll.name)}`;
}

// ------------------------------------------------------------------ sign in / out

function showLogin(message) {
  $("shell").hidden = true;
  $("install-view").hidden = true;
  $("login-view").hidden = false;
  setText("login-error", message);
  $("login-identity").focus();
}

async function signIn(event) {
  event.preventDefault();
  const form = $("login-form");
  const identity = form.elements.identity.value.trim();
  const password = form.elements.password.value;
  setText("login-error", "");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const auth = await api("POST", "/api/collections/_superusers/auth-with-password", { identity, password });
    form.elements.password.value = "";
    await startSession(auth, identity);
  } catch (err) {
    setText("login-error", err.status === 400 ? "Invalid email or password." : err.message);
  } finally {
    button.disabled = false;
  }
}

// After a successful auth-with-password (here or on the install page): keep the token, show the dashboard.
async function startSession(auth, identity) {
  state.token = auth.token;
  sessionStorage.setItem(TOKEN_KEY, auth.token);
  sessionStorage.setItem(EMAIL_KEY, (auth.record && auth.record.email) || identity);
  await showShell();
}

function signOut(message) {
  state.token = "";
  state.current = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EMAIL_KEY);
  for (const id of ["record-dialog", "collection-dialog"]) {
    if ($(id).open) $(id).close();
  }
  $("collection-list").replaceChildren();
  $("system-collection-list").replaceChildren();
  $("records-table").tHead.replaceChildren();
  $("records-table").tBodies[0].replaceChildren();
  $("records-view").hidden = true;
  $("placeholder").hidden = false;
  showLogin(typeof message === "string" ? message : "");
}

async function showShell() {
  $("login-view").hidden = true;
  $("install-view").hidden = true;
  $("shell").hidden = false;
  setText("whoami", sessionStorage.getItem(EMAIL_KEY) || "");
  await loadCollections();
}

// ------------------------------------------------------------------ collections

async function loadCollections(selectName) {
  setText("sidebar-error", "");
  let list;
  try {
    list = await api("GET", "/api/collections?perPage=500&sort=name");
  } catch (err) {
    if (err.status !== 401) setText("sidebar-error", err.message);
    return;
  }
  state.collections = list.items || [];
  renderCollectionList();
  const wanted = selectName || (state.current && state.current.name);
  const found = state.collections.find((c) => c.name === wanted);
  if (found) await selectCollection(found, Boolean(selectName));
}

function renderCollectionList() {
  const user = [];
  const system = [];
  for (const coll of state.collections) {
    const button = el("button", { type: "button", dataset: { collection: coll.name } }, coll.name);
    if (state.current && state.current.name === coll.name) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => selectCollection(coll, true));
    (coll.system ? system : user).push(el("li", {}, button));
  }
  if (user.length === 0) user.push(el("li", { className: "muted" }, "No collections yet."));
  $("collection-list").replaceChildren(...user);
  $("system-collection-list").replaceChildren(...system);
}

async function selectCollection(coll, reset) {
  state.current = coll;
  if (reset) {
    state.page = 1;
    state.sort = "";
    state.filter = "";
    $("filter").value = "";
  }
  for (const button of document.querySelectorAll("#sidebar button[data-collection]")) {
    if (button.dataset.collection === coll.name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  $("placeholder").hidden = true;
  $("records-view").hidden = false;
  setText("collection-title", coll.name);
  $("new-record").hidden = coll.type === "view";
  await loadRecords();
}

// ------------------------------------------------------------------ records table

// Fields worth a column: everything but secrets (password, and system fields hidden from the API).
function visibleFields(coll) {
  return (coll.fields || []).filter((f) => f.type !== "password" && !(f.system && f.hidden));
}

function fileUrl(coll, record, name) {
  const url = `/api/files/${encodeURIComponent(coll.id)}/${encodeURIComponent(record.id)}/${encodeURIComponent(name)}`;
  return state.fileToken ? `${url}?token=${encodeURIComponent(state.fileToken)}` : url;
}

function displayValue(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function renderCell(coll, field, record) {
  const value = record[field.name];
  const td = el("td", { dataset: { field: field.name } });
  if (field.type === "file") {
    const names = Array.isArray(value) ? value : value ? [value] : [];
    for (const name of names) {
      td.append(el("a", { href: fileUrl(coll, record, String(name)), target: "_blank", rel: "noopener noreferrer" }, String(name)));
    }
    return td;
  }
  const text = displayValue(value);
  td.textContent = text;
  if (text) td.title = text;
  return td;
}

function renderHead(fields) {
  const row = el("tr");
  for (const field of fields) {
    let indicator = "";
    let ariaSort = "none";
    if (state.sort === field.name) {
      indicator = " \u25B2";
      ariaSort = "ascending";
    } else if (state.sort === `-${field.name}`) {
      indicator = " \u25BC";
      ariaSort = "descending";
    }
    const button = el("button", { type: "button", dataset: { sort: field.name } }, field.name + indicator);
    button.addEventListener("click", () => {
      state.sort = state.sort === field.name ? `-${field.name}` : field.name;
      state.page = 1;
      loadRecords();
    });
    row.append(el("th", { scope: "col", "aria-sort": ariaSort }, button));
  }
  row.append(el("th", { scope: "col" }, el("span", { className: "muted" }, "")));
  $("records-table").tHead.replaceChildren(row);
}

async function loadRecords() {
  const coll = state.current;
  if (!coll) return;
  setText("records-error", "");
  const params = new URLSearchParams({ page: String(state.page), perPage: String(PER_PAGE) });
  if (state.sort) params.set("sort", state.sort);
  if (state.filter) params.set("filter", state.filter);
  const fields = visibleFields(coll);
  renderHead(fields);
  const body = $("records-table").tBodies[0];
  let result;
  try {
    if (!state.fileToken && (coll.fields || []).some((f) => f.type === "file" && f.protected)) {
      state.fileToken = (await api("POST", "/api/files/token")).token || "";
    }
    result = await api("GET", `${collectionPath(coll)}/records?${params}`);
  } catch (err) {
    if (state.current !== coll) return;
    body.replaceChildren();
    setText("records-error", err.message);
    setText("page-info", "");
    $("prev-page").disabled = true;
    $("next-page").disabled = true;
    return;
  }
  if (state.current !== coll) return; // another collection was selected meanwhile
  const rows = (result.items || []).map((record) => {
    const tr = el("tr", { dataset: { id: record.id } });
    for (const field of fields) tr.append(renderCell(coll, field, record));
    const edit = el("button", { type: "button", className: "link" }, coll.type === "view" ? "View" : "Edit");
    edit.addEventListener("click", () => openRecordForm(record));
    tr.append(el("td", {}, edit));
    return tr;
  });
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { className: "empty", colSpan: fields.length + 1 }, "No records found.")));
  }
  body.replaceChildren(...rows);
  state.totalPages = Math.max(1, result.totalPages || 1);
  const total = result.totalItems ?? rows.length;
  setText("page-info", `Page ${result.page} of ${state.totalPages} \u00B7 ${total} record${total === 1 ? "" : "s"}`);
  $("prev-page").disabled = state.page <= 1;
  $("next-page").disabled = state.page >= state.totalPages;
}

// ------------------------------------------------------------------ record form

// Fields the form edits: not autodate, not hidden system fields (tokenKey); id only on create.
function formFields(coll, creating) {
  return (coll.fields || []).filter((f) => {
    if (f.type === "autodate") return false;
    if (f.type === "password") return true;
    if (f.system && f.hidden) return false;
    if (f.primaryKey || f.name === "id") return creating;
    return true;
  });
}

function fieldInput(field, value, creating, isAuth) {
  const id = `field-${field.name}`;
  const common = { id, name: field.name, "aria-describedby": `${id}-error` };
  const hint = (text) => el("p", { className: "hint muted" }, text);
  switch (field.type) {
    case "bool":
      return [el("input", { ...common, type: "checkbox", checked: Boolean(value) })];
    case "number":
      return [el("input", { ...common, type: "number", step: "any", value: value === null || value === undefined ? "" : String(value) })];
    case "email":
      return [el("input", { ...common, type: "email", value: value || "", autocomplete: "off" })];
    case "url":
      return [el("input", { ...common, type: "url", value: value || "" })];
    case "date":
      return [el("input", { ...common, type: "text", value: value || "", placeholder: "2024-01-31 12:00:00.000Z" })];
    case "editor":
      return [el("textarea", { ...common, value: value || "" })];
    case "json":
    case "geoPoint":
      return [
        el("textarea", { ...common, value: value === null || value === undefined ? "" : JSON.stringify(value, null, 2) }),
        hint("JSON value; leave empty for null."),
      ];
    case "select": {
      const values = field.values || [];
      if ((field.maxSelect || 1) > 1) {
        const chosen = new Set(Array.isArray(value) ? value : value ? [value] : []);
        const box = el("div", { className: "checks", id, role: "group", "aria-describedby": `${id}-error` });
        for (const option of values) {
          box.append(el("label", {}, el("input", { type: "checkbox", name: field.name, value: option, checked: chosen.has(option) }), ` ${option}`));
        }
        return [box];
      }
      const select = el("select", common, el("option", { value: "" }, "\u2014"));
      for (const option of values) select.append(el("option", { value: option, selected: option === value }, option));
      return [select];
    }
    case "relation": {
      const multi = (field.maxSelect || 1) > 1;
      const text = Array.isArray(value) ? value.join(", ") : value || "";
      return [
        el("input", { ...common, type: "text", value: text, autocomplete: "off" }),
        hint(multi ? "Record ids, separated by commas." : "Record id."),
      ];
    }
    case "file": {
      const names = Array.isArray(value) ? value : value ? [value] : [];
      const box = el("div", { id });
      const record = state.editing;
      for (const name of names) {
        box.append(el("a", { href: fileUrl(state.current, record, String(name)), target: "_blank", rel: "noopener noreferrer" }, String(name)), " ");
      }
      if (names.length === 0) box.append(el("span", { className: "muted" }, "No files."));
      return [box, hint("Uploading files is not supported in this dashboard; use the API.")];
    }
    case "password": {
      const inputs = [el("input", { ...common, type: "password", value: "", autocomplete: "new-password" })];
      if (!creating) inputs.push(hint("Leave empty to keep the current password."));
      if (isAuth) {
        inputs.push(
          el("label", { for: "field-passwordConfirm" }, "Confirm password"),
          el("input", { id: "field-passwordConfirm", name: "passwordConfirm", type: "password", autocomplete: "new-password", "aria-describedby": "field-passwordConfirm-error" }),
          el("p", { id: "field-passwordConfirm-error", className: "field-error" }),
        );
      }
      return inputs;
    }
    default: {
      const inputs = [el("input", { ...common, type: "text", value: value === null || value === undefined ? "" : String(value), autocomplete: "off" })];
      if (field.primaryKey || field.name === "id") inputs.push(hint("Leave empty to generate one."));
      return inputs;
    }
  }
}

function openRecordForm(record) {
  const coll = state.current;
  const creating = !record;
  state.editing = record || null;
  const readOnly = coll.type === "view";
  setText("record-dialog-title", creating ? `New ${coll.name} record` : `${coll.name} record ${record.id}`);
  setText("record-form-error", "");
  const rows = [];
  for (const field of formFields(coll, creating)) {
    const id = `field-${field.name}`;
    const label = el("label", { for: id }, field.name, field.required ? " *" : "", el("span", { className: "muted" }, ` (${field.type})`));
    rows.push(el("div", { className: "field", dataset: { field: field.name } },
      label, ...fieldInput(field, record ? record[field.name] : undefined, creating, coll.type === "auth"),
      el("p", { id: `${id}-error`, className: "field-error" })));
  }
  $("record-fields").replaceChildren(...rows);
  for (const input of $("record-fields").querySelectorAll("input, select, textarea")) input.disabled = readOnly;
  $("record-form").querySelector("button[type=submit]").hidden = readOnly;
  $("record-delete").hidden = creating || readOnly;
  $("delete-confirm").hidden = true;
  $("record-dialog").showModal();
  const first = $("record-fields").querySelector("input:not([type=checkbox]), select, textarea");
  if (first) first.focus();
}

// Read the form back into a JSON body; returns null (and marks the fields) when JSON is invalid.
function readRecordForm(coll, creating) {
  const form = $("record-form");
  const body = {};
  let ok = true;
  for (const field of formFields(coll, creating)) {
    const input = form.elements[field.name];
    switch (field.type) {
      case "file":
        break;
      case "bool":
        body[field.name] = input.checked;
        break;
      case "number":
        body[field.name] = input.value === "" ? null : Number(input.value);
        break;
      case "json":
      case "geoPoint": {
        const text = input.value.trim();
        if (text === "") {
          body[field.name] = null;
          break;
        }
        try {
          body[field.name] = JSON.parse(text);
        } catch (err) {
          showFieldError(field.name, "Invalid JSON.");
          ok = false;
        }
        break;
      }
      case "select":
        if ((field.maxSelect || 1) > 1) {
          body[field.name] = [...form.querySelectorAll(`input[type=checkbox][name="${CSS.escape(field.name)}"]`)]
            .filter((box) => box.checked).map((box) => box.value);
        } else {
          body[field.name] = input.value;
        }
        break;
      case "relation":
        if ((field.maxSelect || 1) > 1) {
          body[field.name] = input.value.split(/[\s,]+/).filter(Boolean);
        } else {
          body[field.name] = input.value.trim();
        }
        break;
      case "password":
        if (input.value !== "" || (creating && field.required)) {
          body[field.name] = input.value;
          if (form.elements.passwordConfirm) body.passwordConfirm = form.elements.passwordConfirm.value;
        }
        break;
      default:
        if (field.primaryKey || field.name === "id") {
          if (input.value.trim() !== "") body[field.name] = input.value.trim();
        } else {
          body[field.name] = input.value;
        }
    }
  }
  return ok ? body : null;
}

async function saveRecord(event) {
  event.preventDefault();
  const coll = state.current;
  const creating = !state.editing;
  clearFieldErrors($("record-form"));
  setText("record-form-error", "");
  const body = readRecordForm(coll, creating);
  if (!body) {
    setText("record-form-error", "Please fix the marked fields.");
    return;
  }
  const path = creating ? `${collectionPath(coll)}/records` : `${collectionPath(coll)}/records/${encodeURIComponent(state.editing.id)}`;
  try {
    await api(creating ? "POST" : "PATCH", path, body);
  } catch (err) {
    const unplaced = [];
    for (const [name, message] of flattenErrors(err.data)) {
      if (!showFieldError(name, message)) unplaced.push(`${name}: ${message}`);
    }
    setText("record-form-error", [err.message, ...unplaced].join("\n"));
    return;
  }
  $("record-dialog").close();
  await loadRecords();
}

async function deleteRecord() {
  const coll = state.current;
  const record = state.editing;
  try {
    await api("DELETE", `${collectionPath(coll)}/records/${encodeURIComponent(record.id)}`);
  } catch (err) {
    setText("record-form-error", err.message);
    $("delete-confirm").hidden = true;
    return;
  }
  $("record-dialog").close();
  await loadRecords();
}

// ------------------------------------------------------------------ new collection

const SIMPLE_TYPES = ["text", "number", "bool", "email", "url", "date", "json"];

function addFieldRow() {
  const index = $("collection-fields").children.length;
  const name = el("input", { type: "text", name: "fieldName", placeholder: "field name", autocomplete: "off", "aria-label": `Field ${index + 1} name` });
  const type = el("select", { name: "fieldType", "aria-label": `Field ${index + 1} type` });
  for (const t of SIMPLE_TYPES) type.append(el("option", { value: t }, t));
  const remove = el("button", { type: "button", "aria-label": `Remove field ${index + 1}` }, "\u00D7");
  const row = el("div", { className: "field-row" }, el("div", {}, name, el("p", { className: "field-error" })), type, remove);
  remove.addEventListener("click", () => row.remove());
  $("collection-fields").append(row);
  name.focus();
}

function openCollectionForm() {
  $("collection-form").reset();
  $("collection-fields").replaceChildren();
  clearFieldErrors($("collection-form"));
  setText("collection-form-error", "");
  addFieldRow();
  $("collection-dialog").showModal();
  $("collection-name").focus();
}

async function saveCollection(event) {
  event.preventDefault();
  const form = $("collection-form");
  clearFieldErrors(form);
  setText("collection-form-error", "");
  const rows = [...$("collection-fields").children];
  const fields = [];
  const rowOfField = [];
  for (const row of rows) {
    const name = row.querySelector("input[name=fieldName]").value.trim();
    if (!name) continue;
    fields.push({ name, type: row.querySelector("select[name=fieldType]").value });
    rowOfField.push(row);
  }
  // like PocketBase's dashboard: new collections get created/updated timestamps (after the user's
  // fields, so that error indexes still map onto the rows: the server puts id at index 0)
  fields.push({ name: "created", type: "autodate", onCreate: true, onUpdate: false });
  fields.push({ name: "updated", type: "autodate", onCreate: true, onUpdate: true });
  const name = $("collection-name").value.trim();
  let created;
  try {
    created = await api("POST", "/api/collections", { name, type: "base", fields });
  } catch (err) {
    const unplaced = [];
    for (const [path, message] of flattenErrors(err.data)) {
      const match = /^fields\.(\d+)\.name$/.exec(path);
      // the server's field list starts with the generated id field at index 0
      const row = match ? rowOfField[Number(match[1]) - 1] : null;
      if (path === "name") {
        $("collection-name-error").textContent = message;
        $("collection-name").setAttribute("aria-invalid", "true");
      } else if (row) {
        row.querySelector(".field-error").textContent = message;
      } else {
        unplaced.push(`${path}: ${message}`);
      }
    }
    setText("collection-form-error", [err.message, ...unplaced].join("\n"));
    return;
  }
  $("collection-dialog").close();
  await loadCollections(created.name);
}

// ------------------------------------------------------------------ links from emails

// PocketBase's mails link to {APP_URL}/_/#/auth/<action>/<token>, and the OAuth2 redirect ends on
// #/auth/oauth2-redirect-success|failure. These pages are for app users: no sign-in needed.

function authActionRoute() {
  const match = /^#\/auth\/([a-z0-9-]+)(?:\/([^/]*))?$/.exec(window.location.hash);
  if (!match) return null;
  let token = "";
  try {
    token = decodeURIComponent(match[2] || "");
  } catch (err) {
    token = "";
  }
  return { action: match[1], token };
}

// The collection a mail token belongs to, from its (unverified) JWT claims; "" when unreadable.
function tokenCollection(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    return typeof claims.collectionId === "string" ? claims.collectionId : "";
  } catch (err) {
    return "";
  }
}

function actionForm(inputs, submitLabel, submit, done) {
  const form = el("form", { noValidate: true });
  const error = el("p", { className: "error", role: "alert" });
  for (const [name, label, type, autocomplete] of inputs) {
    form.append(el("div", { className: "field" },
      el("label", { for: `field-${name}` }, label),
      el("input", { id: `field-${name}`, name, type, autocomplete, "aria-describedby": `field-${name}-error` }),
      el("p", { id: `field-${name}-error`, className: "field-error" })));
  }
  const button = el("button", { type: "submit", className: "primary" }, submitLabel);
  form.append(error, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    error.textContent = "";
    button.disabled = true;
    try {
      await submit(form);
    } catch (err) {
      const unplaced = [];
      for (const [name, message] of flattenErrors(err.data)) {
        if (!showFieldError(name, message)) unplaced.push(`${name}: ${message}`);
      }
      error.textContent = [err.message, ...unplaced].join("\n");
      return;
    } finally {
      button.disabled = false;
    }
    done();
  });
  return form;
}

function showAuthAction(route) {
  $("login-view").hidden = true;
  $("install-view").hidden = true;
  $("shell").hidden = true;
  $("auth-action-view").hidden = false;
  $("record-fields").replaceChildren();
  const body = $("auth-action-body");
  const succeed = (text) => body.replaceChildren(el("p", { className: "success", role: "status" }, text));
  const fail = (text) => body.replaceChildren(el("p", { className: "error", role: "alert" }, text));
  const collection = tokenCollection(route.token);
  const endpoint = (name) => `/api/collections/${encodeURIComponent(collection)}/${name}`;
  const needsToken = ["confirm-verification", "confirm-password-reset", "confirm-email-change"];
  if (needsToken.includes(route.action) && !collection) {
    setText("auth-action-title", "Invalid link");
    fail("This link is invalid or incomplete.");
    return;
  }
  switch (route.action) {
    case "oauth2-redirect-success":
      setText("auth-action-title", "Signed in");
      succeed("Authentication completed. You can close this window and go back to the app.");
      break;
    case "oauth2-redirect-failure":
      setText("auth-action-title", "Sign-in failed");
      fail("Authentication failed. Close this window and try again from the app.");
      break;
    case "confirm-verification":
      setText("auth-action-title", "Email verification");
      body.replaceChildren(el("p", { className: "muted" }, "Verifying your email address\u2026"));
      api("POST", endpoint("confirm-verification"), { token: route.token }, { auth: false })
        .then(() => succeed("Your email address has been verified."))
        .catch((err) => fail(`The email address could not be verified: ${err.message}`));
      break;
    case "confirm-password-reset":
      setText("auth-action-title", "Reset your password");
      body.replaceChildren(actionForm(
        [["password", "New password", "password", "new-password"],
          ["passwordConfirm", "Confirm new password", "password", "new-password"]],
        "Set new password",
        (form) => api("POST", endpoint("confirm-password-reset"), {
          token: route.token, password: form.elements.password.value,
          passwordConfirm: form.elements.passwordConfirm.value,
        }, { auth: false }),
        () => succeed("Your password has been changed. You can now sign in with it.")));
      break;
    case "confirm-email-change":
      setText("auth-action-title", "Confirm your new email address");
      body.replaceChildren(actionForm(
        [["password", "Your password", "password", "current-password"]],
        "Confirm new email",
        (form) => api("POST", endpoint("confirm-email-change"), {
          token: route.token, password: form.elements.password.value,
        }, { auth: false }),
        () => succeed("Your email address has been changed. You can now sign in with it.")));
      break;
    default:
      setText("auth-action-title", "Not found");
      fail("This page does not exist.");
  }
}

function route() {
  const install = installRoute();
  if (install !== null) {
    $("login-view").hidden = true;
    $("shell").hidden = true;
    $("auth-action-view").hidden = true;
    showInstall(install, startSession);
    return;
  }
  $("install-view").hidden = true;
  const action = authActionRoute();
  if (action) {
    showAuthAction(action);
    return;
  }
  $("auth-action-view").hidden = true;
  if (state.token) showShell();
  else showLogin("");
}

// ------------------------------------------------------------------ wiring

function init() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.filter = $("filter").value.trim();
    state.page = 1;
    loadRecords();
  });
  $("prev-page").addEventListener("click", () => {
    if (state.page > 1) {
      state.page -= 1;
      loadRecords();
    }
  });
  $("next-page").addEventListener("click", () => {
    if (state.page < state.totalPages) {
      state.page += 1;
      loadRecords();
    }
  });
  $("new-record").addEventListener("click", () => openRecordForm(null));
  $("record-form").addEventListener("submit", saveRecord);
  $("record-cancel").addEventListener("click", () => $("record-dialog").close());
  $("record-delete").addEventListener("click", () => {
    $("delete-confirm").hidden = false;
    $("delete-no").focus();
  });
  $("delete-no").addEventListener("click", () => {
    $("delete-confirm").hidden = true;
  });
  $("delete-yes").addEventListener("click", deleteRecord);
  $("new-collection").addEventListener("click", openCollectionForm);
  $("add-field").addEventListener("click", addFieldRow);
  $("collection-form").addEventListener("submit", saveCollection);
  $("collection-cancel").addEventListener("click", () => $("collection-dialog").close());

  window.addEventListener("hashchange", route);
  route();
}

init();
