// The page's words in Russian and English. Event labels come from the API (GET /api/events).

const WORDS = {
  en: {
    title: "Queue hooks",
    language: "Language",
    signOut: "Sign out",
    dismiss: "Dismiss",
    signInTitle: "Sign in",
    token: "Access token",
    tokenHint: "The token is kept in this browser tab only, until you close it.",
    signIn: "Sign in",
    hooksTitle: "Hooks",
    queue: "Queue",
    readOnly: "Read only",
    add: "Add",
    refresh: "Refresh",
    event: "Event",
    schema: "Schema",
    state: "State",
    actions: "Actions",
    empty: "This queue has no hooks yet.",
    rowsPerPage: "Rows per page",
    prev: "Previous",
    next: "Next",
    page: (n) => `Page ${n}`,
    pages: "Pages",
    cancel: "Cancel",
    save: "Save",
    delete: "Delete",
    edit: "Edit",
    confirmTitle: "Delete?",
    addTitle: "Add a hook",
    editTitle: "Edit the hook",
    chooseEvent: "Choose an event",
    schemaPlaceholder: "Type to search schemas",
    noSchemas: "No schema matches",
    deleteSelected: (n) => `Delete selected (${n})`,
    confirmOne: (label, schema) => `Delete the hook “${label}” → “${schema}”?`,
    confirmMany: (n) => `Delete ${n} selected hooks? This cannot be undone.`,
    selectAll: "Select all hooks on this page",
    selectRow: (label, schema) => `Select ${label} → ${schema}`,
    switchRow: (label, schema) => `Enabled: ${label} → ${schema}`,
    editRow: (label, schema) => `Edit ${label} → ${schema}`,
    deleteRow: (label, schema) => `Delete ${label} → ${schema}`,
    on: "On",
    off: "Off",
    noQueues: "This token may not read any queue.",
    unreachable: "The API cannot be reached. Check that queue-hooks api is running.",
    signedOut: "The token was refused: sign in again.",
    loading: "Loading…",
    added: "Hook added.",
    saved: "Hook saved.",
    deleted: (n) => (n === 1 ? "Hook deleted." : `${n} hooks deleted.`),
    enabled: "Hook enabled.",
    disabled: "Hook disabled.",
  },
  ru: {
    title: "Хуки очереди",
    language: "Язык",
    signOut: "Выйти",
    dismiss: "Закрыть",
    signInTitle: "Вход",
    token: "Токен доступа",
    tokenHint: "Токен хранится только в этой вкладке браузера, пока она открыта.",
    signIn: "Войти",
    hooksTitle: "Хуки",
    queue: "Очередь",
    readOnly: "Только чтение",
    add: "Добавить",
    refresh: "Обновить",
    event: "Событие",
    schema: "Схема",
    state: "Состояние",
    actions: "Действия",
    empty: "У этой очереди пока нет хуков.",
    rowsPerPage: "Строк на странице",
    prev: "Назад",
    next: "Вперёд",
    page: (n) => `Страница ${n}`,
    pages: "Страницы",
    cancel: "Отмена",
    save: "Сохранить",
    delete: "Удалить",
    edit: "Изменить",
    confirmTitle: "Удалить?",
    addTitle: "Новый хук",
    editTitle: "Изменить хук",
    chooseEvent: "Выберите событие",
    schemaPlaceholder: "Начните вводить имя схемы",
    noSchemas: "Схем не найдено",
    deleteSelected: (n) => `Удалить выбранные (${n})`,
    confirmOne: (label, schema) => `Удалить хук «${label}» → «${schema}»?`,
    confirmMany: (n) => `Удалить выбранные хуки (${n})? Это нельзя отменить.`,
    selectAll: "Выбрать все хуки на странице",
    selectRow: (label, schema) => `Выбрать ${label} → ${schema}`,
    switchRow: (label, schema) => `Включён: ${label} → ${schema}`,
    editRow: (label, schema) => `Изменить ${label} → ${schema}`,
    deleteRow: (label, schema) => `Удалить ${label} → ${schema}`,
    on: "Вкл.",
    off: "Выкл.",
    noQueues: "Этому токену не доступна ни одна очередь.",
    unreachable: "API недоступен. Проверьте, что queue-hooks api запущен.",
    signedOut: "Токен отклонён: войдите снова.",
    loading: "Загрузка…",
    added: "Хук добавлен.",
    saved: "Хук сохранён.",
    deleted: (n) => (n === 1 ? "Хук удалён." : `Удалено хуков: ${n}.`),
    enabled: "Хук включён.",
    disabled: "Хук выключен.",
  },
};

// Queue types (contract §4) in Russian; in English the API's own `type_name` is shown.
const TYPES_RU = {
  0: "Офлайн-очередь",
  1: "Входящая очередь",
  2: "Исходящий IVR",
  3: "Предварительный обзвон",
  4: "Прогрессивный обзвон",
  5: "Предиктивный обзвон",
  6: "Входящая очередь чатов",
  7: "Очередь задач",
};

export function typeName(queue) {
  return (lang === "ru" && TYPES_RU[queue.type]) || queue.type_name || "";
}

const LANG_KEY = "queue-hooks.lang";
let lang = localStorage.getItem(LANG_KEY)
  || ((navigator.language || "").toLowerCase().startsWith("ru") ? "ru" : "en");
let eventLabels = {}; // event -> {en, ru}

export const currentLang = () => lang;

export function setLang(value) {
  lang = WORDS[value] ? value : "en";
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
}

/** A word of the page; functions take their arguments (counts, names). */
export function t(key, ...args) {
  const word = WORDS[lang][key] ?? WORDS.en[key] ?? key;
  return typeof word === "function" ? word(...args) : word;
}

/** Every element with data-t gets its word again (after a change of language). */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  document.title = t("title");
}

/**
 * GET /api/events: "the eight events with their labels in en and ru". The contract does not fix
 * the shape, so both a list and {items: [...]} are read, each entry naming its event by `id`,
 * `event` or `name`, with the labels beside it or under `labels` / `label`.
 */
export function loadEventLabels(answer) {
  const list = Array.isArray(answer) ? answer : (answer && answer.items) || [];
  eventLabels = {};
  for (const item of list) {
    const name = item.id ?? item.event ?? item.name;
    const labels = item.labels ?? item.label ?? item;
    if (typeof name === "string" && labels && typeof labels === "object") {
      eventLabels[name] = { en: labels.en, ru: labels.ru };
    }
  }
}

export function eventLabel(event) {
  const labels = eventLabels[event] || {};
  return labels[lang] || labels.en || event;
}
