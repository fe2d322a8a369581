// DOM helpers shared by the dashboard's pages. Text only ever reaches the page through
// textContent, text nodes, input values and setAttribute on non-executing attributes.

export const $ = (id) => document.getElementById(id);

// el("a", {href: url, className: "x"}, "text", otherNode): properties are assigned, never parsed as HTML.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("aria-") || key === "role" || key === "for") node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setText(id, text) {
  $(id).textContent = text || "";
}

// ------------------------------------------------------------------ field errors

export function clearFieldErrors(container) {
  for (const node of container.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of container.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

// Shows `message` under the input `${prefix}${name}` (in `${prefix}${name}-error`); false when there is none.
export function showFieldError(name, message, prefix = "field-") {
  const target = document.getElementById(`${prefix}${name}-error`);
  if (!target) return false;
  target.textContent = message;
  const input = document.getElementById(`${prefix}${name}`);
  if (input) input.setAttribute("aria-invalid", "true");
  return true;
}

// The error envelope's data: {field: {code, message}}, possibly nested ({fields: {0: {name: {...}}}}).
export function flattenErrors(data, prefix = "") {
  const out = [];
  for (const [key, value] of Object.entries(data || {})) {
    if (!value || typeof value !== "object") continue;
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value.message === "string") out.push([path, value.message]);
    else out.push(...flattenErrors(value, path));
  }
  return out;
}
