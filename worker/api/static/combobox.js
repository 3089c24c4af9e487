// The schema box of the hook dialog: a text input that is also a list (ARIA combobox). Typing
// asks the API (GET /api/schemas?q=...) after a short pause; the newest answer wins.

const PAUSE_MS = 200;
const LIMIT = 20;

export class SchemaBox {
  /** `search(q)` resolves to schema objects; `onChange(schema|null)` hears every choice. */
  constructor(input, list, { search, onChange, onError, words }) {
    Object.assign(this, { input, list, search, onChange, onError, words });
    this.items = [];
    this.active = -1;
    this.chosen = null;
    this.asked = 0; // numbers the searches so that a late, older answer is dropped
    this.timer = 0;
    input.addEventListener("input", () => this.typed());
    input.addEventListener("focus", () => this.ask());
    input.addEventListener("keydown", (event) => this.key(event));
    // Closed a moment after the focus leaves (a click on an option lands first), unless it
    // is back by then: a dialog saved and the next one opened at once must not have its
    // fresh search cancelled by the old blur.
    input.addEventListener("blur", () =>
      setTimeout(() => {
        if (document.activeElement !== this.input) this.close();
      }, 150),
    );
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(this.items[Number(option.dataset.index)]);
    });
  }

  get open() {
    return !this.list.hidden;
  }

  /** Starts the box on a schema (edit) or empty (add). */
  reset(schema) {
    this.chosen = schema || null;
    this.input.value = schema ? schema.name || String(schema.id) : "";
    this.input.placeholder = this.words.placeholder();
    this.close();
  }

  typed() {
    if (this.chosen && this.input.value !== this.chosen.name) {
      this.chosen = null;
      this.onChange(null);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.ask(), PAUSE_MS);
  }

  async ask() {
    const number = ++this.asked;
    const q = this.chosen ? "" : this.input.value.trim();
    let items;
    try {
      items = await this.search(q, LIMIT);
    } catch (error) {
      if (number === this.asked) this.onError(error);
      return;
    }
    if (number !== this.asked || document.activeElement !== this.input) return;
    this.show(items);
  }

  show(items) {
    this.items = items;
    this.active = items.findIndex((s) => this.chosen && String(s.id) === String(this.chosen.id));
    this.list.replaceChildren(...items.map((schema, index) => this.option(schema, index)));
    if (!items.length) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = this.words.none();
      this.list.append(none);
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.mark();
  }

  option(schema, index) {
    const li = document.createElement("li");
    li.id = `schema-option-${index}`;
    li.setAttribute("role", "option");
    li.dataset.index = String(index);
    const name = document.createElement("span");
    name.textContent = schema.name;
    const url = document.createElement("small");
    url.textContent = schema.url || "";
    li.append(name, url);
    return li;
  }

  mark() {
    for (const li of this.list.querySelectorAll("[role=option]")) {
      const on = Number(li.dataset.index) === this.active;
      li.setAttribute("aria-selected", String(on));
      if (on) li.scrollIntoView({ block: "nearest" });
    }
    const current = this.active >= 0 ? `schema-option-${this.active}` : "";
    this.input.setAttribute("aria-activedescendant", current);
  }

  choose(schema) {
    if (!schema) return;
    this.chosen = schema;
    this.input.value = schema.name;
    this.close();
    this.onChange(schema);
  }

  close() {
    // A search still pending (typed just before a pick, or before Esc) must not reopen it.
    clearTimeout(this.timer);
    this.asked += 1;
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  key(event) {
    const n = this.items.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!this.open) return void this.ask();
      if (!n) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + n) % n;
      this.mark();
    } else if (event.key === "Enter" && this.open && this.active >= 0) {
      event.preventDefault(); // Enter picks the option; the next Enter submits the dialog
      this.choose(this.items[this.active]);
    } else if (event.key === "Escape" && this.open) {
      event.preventDefault(); // the first Esc closes the list, the next one the dialog
      event.stopPropagation();
      this.close();
    }
  }
}
