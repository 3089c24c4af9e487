// The hooks page (contract §10): sign in, pick a queue, and manage its hooks through §8.
import { api, ApiError, token } from "./api.js";
import { SchemaBox } from "./combobox.js";
import {
  currentLang, eventLabel, loadEventLabels, setLang, t, translate, typeName,
} from "./i18n.js";

const $ = (id) => document.getElementById(id);
const QUEUE_PAGE = 100; // the picker reads the queues a hundred at a time
const QUEUE_PAGES = 50; // and stops after 5,000: a picker longer than that helps nobody

const state = {
  queues: [],
  queue: null, // the picked queue object of §8 (id, name, type, type_name, events, can_edit)
  page: 1,
  size: 40,
  next: false,
  hooks: [],
  selected: new Set(), // ids of the rows ticked on this page
  editing: null, // the hook the dialog edits; null when it adds
  event: "",
  schema: null,
};

const canEdit = () => Boolean(state.queue) && state.queue.can_edit !== false;

// ---- messages: every refusal is shown in words, never lost -------------------------------

function showError(error) {
  let text = error instanceof ApiError ? error.message : String(error && error.message || error);
  if (error instanceof ApiError && error.status === 0) text = t("unreachable");
  $("error-text").textContent = text;
  $("error").hidden = false;
  if (error instanceof ApiError && error.status === 401) signOut(t("signedOut"));
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

// ---- signing in and out ------------------------------------------------------------------

async function signIn(secret) {
  token.set(secret);
  clearError();
  let queues;
  try {
    const [events, readable] = await Promise.all([api.events(), readableQueues()]);
    loadEventLabels(events);
    queues = readable;
  } catch (error) {
    showError(error); // a 401 signs out again
    return;
  }
  showQueues(queues);
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  $("hooks").hidden = false;
  $("token").value = "";
  await pickQueue(wantedQueue());
}

function signOut(message) {
  token.clear();
  Object.assign(state, { queues: [], queue: null, hooks: [], page: 1 });
  state.selected.clear();
  $("hooks").hidden = true;
  $("sign-out").hidden = true;
  showSignIn();
  say(message || "");
}

function showSignIn() {
  $("sign-in").hidden = false;
  $("hooks").hidden = true;
  $("token").focus();
}

// ---- queues ------------------------------------------------------------------------------

async function readableQueues() {
  const queues = [];
  for (let page = 1; page <= QUEUE_PAGES; page++) {
    const answer = await api.queues(page, QUEUE_PAGE);
    queues.push(...answer.items);
    if (!answer.next) break;
  }
  return queues;
}

function showQueues(queues) {
  state.queues = queues;
  const select = $("queue");
  select.replaceChildren(...queues.map((q) => new Option(`${q.name} (${q.id})`, String(q.id))));
  select.disabled = !queues.length;
  if (!queues.length) say(t("noQueues"));
}

/** The queue named in the address (#queue=12) survives a reload of the page. */
function wantedQueue() {
  const id = new URLSearchParams(location.hash.slice(1)).get("queue");
  const found = state.queues.find((q) => String(q.id) === id);
  return found || state.queues[0] || null;
}

async function pickQueue(queue) {
  state.queue = queue;
  state.page = 1;
  state.selected.clear();
  if (!queue) return render();
  $("queue").value = String(queue.id);
  history.replaceState(null, "", `#queue=${encodeURIComponent(queue.id)}`);
  await loadHooks();
}

let loads = 0; // numbers the loads of hooks: only the newest one is shown

// ---- hooks -------------------------------------------------------------------------------

async function loadHooks() {
  if (!state.queue) return render();
  say(t("loading"));
  const number = ++loads;
  let answer;
  try {
    answer = await api.hooks(state.queue.id, state.page, state.size);
  } catch (error) {
    if (number !== loads) return;
    say("");
    showError(error);
    return;
  }
  if (number !== loads) return; // a newer load (another queue, page or size) is on its way
  // A page emptied by deletes: step back to the last page that has rows.
  if (!answer.items.length && state.page > 1) {
    state.page -= 1;
    return loadHooks();
  }
  state.hooks = answer.items;
  state.next = Boolean(answer.next);
  const ids = new Set(state.hooks.map((h) => h.id));
  for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
  say("");
  render();
}

function render() {
  const queue = state.queue;
  const editable = canEdit();
  $("queue-type").textContent = queue ? typeName(queue) : "";
  $("read-only").hidden = !queue || editable;
  $("add").hidden = !editable;
  $("add").disabled = !queue;
  document.body.classList.toggle("read-only", !editable);
  $("rows").replaceChildren(...state.hooks.map(row));
  $("empty").hidden = state.hooks.length > 0;
  $("table").hidden = state.hooks.length === 0;
  renderSelection();
  $("prev").disabled = state.page <= 1;
  $("next").disabled = !state.next;
  $("page-no").textContent = t("page", state.page);
  $("pager").setAttribute("aria-label", t("pages"));
}

function schemaName(hook) {
  return (hook.schema && (hook.schema.name || hook.schema.id)) || "";
}

function row(hook) {
  const tr = document.createElement("tr");
  tr.dataset.id = String(hook.id);
  const label = eventLabel(hook.event);
  const schema = schemaName(hook);
  const editable = canEdit();

  const check = cell("col-check");
  if (editable) {
    const box = input("checkbox", t("selectRow", label, schema));
    box.checked = state.selected.has(hook.id);
    box.addEventListener("change", () => {
      if (box.checked) state.selected.add(hook.id);
      else state.selected.delete(hook.id);
      renderSelection();
    });
    check.append(box);
  }

  const event = cell("col-event");
  event.textContent = label;
  event.title = hook.event;

  const schemaCell = cell("col-schema");
  schemaCell.textContent = schema;

  const stateCell = cell("col-state");
  if (editable) {
    const toggle = input("checkbox", t("switchRow", label, schema));
    toggle.setAttribute("role", "switch");
    toggle.className = "switch";
    toggle.checked = hook.enabled;
    toggle.addEventListener("change", () => setEnabled(hook, toggle));
    stateCell.append(toggle);
  } else {
    const badge = document.createElement("span");
    badge.className = hook.enabled ? "state on" : "state off";
    badge.textContent = hook.enabled ? t("on") : t("off");
    stateCell.append(badge);
  }

  const actions = cell("col-actions");
  if (editable) {
    actions.append(
      button(t("edit"), t("editRow", label, schema), "edit", () => openDialog(hook)),
      button(t("delete"), t("deleteRow", label, schema), "delete danger-text",
        () => confirmDelete([hook.id], t("confirmOne", label, schema))),
    );
  }
  tr.append(check, event, schemaCell, stateCell, actions);
  return tr;
}

function cell(className) {
  const td = document.createElement("td");
  td.className = className;
  return td;
}

function input(type, name) {
  const el = document.createElement("input");
  el.type = type;
  el.setAttribute("aria-label", name);
  return el;
}

function button(text, name, className, onClick) {
  const el = document.createElement("button");
  el.type = "button";
  el.className = className;
  el.textContent = text;
  el.setAttribute("aria-label", name);
  el.addEventListener("click", onClick);
  return el;
}

function renderSelection() {
  const n = state.selected.size;
  const bulk = $("delete-selected");
  bulk.hidden = n === 0 || !canEdit();
  bulk.textContent = t("deleteSelected", n);
  const all = $("select-all");
  all.hidden = !canEdit();
  all.setAttribute("aria-label", t("selectAll"));
  all.checked = n > 0 && n === state.hooks.length;
  all.indeterminate = n > 0 && n < state.hooks.length;
}

async function setEnabled(hook, toggle) {
  toggle.disabled = true;
  clearError();
  try {
    const now = await api.patchHook(state.queue.id, hook.id, { enabled: toggle.checked });
    Object.assign(hook, now);
    say(now.enabled ? t("enabled") : t("disabled"));
  } catch (error) {
    toggle.checked = hook.enabled; // the switch shows what the database holds
    showError(error);
  } finally {
    toggle.disabled = false;
  }
}

// ---- delete, one or several: always asked first ------------------------------------------

let confirmed = null;

function confirmDelete(ids, text) {
  $("confirm-text").textContent = text;
  confirmed = ids;
  $("confirm-dialog").showModal();
  $("confirm-cancel").focus();
}

async function deleteConfirmed() {
  const ids = confirmed;
  confirmed = null;
  $("confirm-dialog").close();
  if (!ids) return;
  clearError();
  try {
    const answer = await api.deleteHooks(state.queue.id, ids);
    for (const id of ids) state.selected.delete(id);
    say(t("deleted", answer.items ? answer.items.length : ids.length));
  } catch (error) {
    showError(error);
  }
  await loadHooks();
}

// ---- the add / edit dialog ---------------------------------------------------------------

const schemaBox = new SchemaBox($("hook-schema"), $("schema-list"), {
  search: async (q, size) => (await api.schemas(q, size)).items,
  onChange: (schema) => {
    state.schema = schema;
    updateSave();
  },
  onError: (error) => dialogError(error),
  words: { placeholder: () => t("schemaPlaceholder"), none: () => t("noSchemas") },
});

function openDialog(hook) {
  state.editing = hook || null;
  state.event = hook ? hook.event : "";
  state.schema = hook ? hook.schema : null;
  $("hook-dialog-title").textContent = t(hook ? "editTitle" : "addTitle");
  const select = $("hook-event");
  const events = state.queue.events || [];
  // Only the events the queue's type fires (contract §4): the API lists them on the queue.
  const options = [new Option(t("chooseEvent"), "")];
  for (const event of events) options.push(new Option(eventLabel(event), event));
  options[0].disabled = true;
  select.replaceChildren(...options);
  select.value = state.event;
  schemaBox.reset(state.schema);
  dialogError(null);
  updateSave();
  $("hook-dialog").showModal();
  select.focus();
}

function updateSave() {
  $("hook-save").disabled = !(state.event && state.schema);
}

function dialogError(error) {
  const box = $("hook-dialog-error");
  box.hidden = !error;
  box.textContent = error ? (error.status === 0 ? t("unreachable") : error.message) : "";
  if (error instanceof ApiError && error.status === 401) {
    $("hook-dialog").close();
    showError(error);
  }
}

async function saveDialog() {
  if (!(state.event && state.schema)) return;
  const schema = { id: String(state.schema.id) };
  const hook = state.editing;
  const save = $("hook-save");
  save.disabled = true;
  try {
    if (hook) {
      const change = {};
      if (state.event !== hook.event) change.event = state.event;
      if (String(state.schema.id) !== String(hook.schema.id)) change.schema = schema;
      if (Object.keys(change).length) await api.patchHook(state.queue.id, hook.id, change);
    } else {
      await api.createHook(state.queue.id, { event: state.event, schema, enabled: true });
    }
  } catch (error) {
    dialogError(error); // the dialog stays open with the reason, so nothing typed is lost
    updateSave();
    return;
  }
  $("hook-dialog").close();
  say(t(hook ? "saved" : "added"));
  await loadHooks();
}

// ---- wiring ------------------------------------------------------------------------------

function wire() {
  $("lang").value = currentLang();
  $("lang").addEventListener("change", (e) => {
    setLang(e.target.value);
    translate();
    render();
  });
  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const secret = $("token").value.trim();
    if (secret) signIn(secret);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("error-close").addEventListener("click", clearError);
  $("queue").addEventListener("change", (e) => {
    clearError();
    pickQueue(state.queues.find((q) => String(q.id) === e.target.value) || null);
  });
  $("refresh").addEventListener("click", () => {
    clearError();
    loadHooks();
  });
  $("size").addEventListener("change", (e) => {
    state.size = Number(e.target.value);
    state.page = 1;
    state.selected.clear();
    loadHooks();
  });
  $("prev").addEventListener("click", () => turn(-1));
  $("next").addEventListener("click", () => turn(1));
  $("add").addEventListener("click", () => openDialog(null));
  $("select-all").addEventListener("change", (e) => {
    state.selected.clear();
    if (e.target.checked) for (const hook of state.hooks) state.selected.add(hook.id);
    render();
  });
  $("delete-selected").addEventListener("click", () => {
    confirmDelete([...state.selected], t("confirmMany", state.selected.size));
  });

  $("hook-event").addEventListener("change", (e) => {
    state.event = e.target.value;
    updateSave();
  });
  $("hook-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveDialog();
  });
  $("hook-cancel").addEventListener("click", () => $("hook-dialog").close());
  $("hook-dialog").addEventListener("cancel", (e) => {
    if (schemaBox.open) e.preventDefault(); // Esc closed the schema list, not the dialog
  });
  $("confirm-form").addEventListener("submit", (e) => {
    e.preventDefault();
    deleteConfirmed();
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-dialog").addEventListener("close", () => {
    confirmed = null;
  });
}

function turn(step) {
  if (step < 0 && state.page <= 1) return;
  if (step > 0 && !state.next) return;
  state.page += step;
  state.selected.clear();
  loadHooks();
}

setLang(currentLang());
translate();
wire();
if (token.get()) signIn(token.get());
else showSignIn();
