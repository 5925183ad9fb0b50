"use strict";
// Pickers that ask the catalog as one types, for what is too big to list in the page: items by
// id or by words of their title (textarea[data-item-picker]: "line" adds the id as a line, "pin"
// adds "id @ next position"), and attributes by name, then by the values the items have for it
// (textarea[data-attribute-picker]). They ask the admin's catalog/items/ and catalog/attributes/
// (#rule-catalog names them) about the rule's customer: the stored rule's, or the one chosen.
(function () {
  const catalog = document.getElementById("rule-catalog");
  if (!catalog) return;

  function customer() {
    if (catalog.dataset.customer) return catalog.dataset.customer;
    const select = document.getElementById("id_customer");
    return select ? select.value : "";
  }

  async function ask(url, params) {
    const query = new URLSearchParams({ customer: customer(), ...params });
    const response = await fetch(url + "?" + query, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    return response.ok ? response.json() : null;
  }

  function lines(area) {
    return area.value.split("\n").map((line) => line.trim()).filter(Boolean);
  }

  function addLine(area, line, alreadyThere) {
    const current = lines(area);
    if (!current.some(alreadyThere)) current.push(line);
    area.value = current.join("\n");
  }

  function addItem(area, id) {
    if (area.dataset.itemPicker !== "pin") {
      addLine(area, id, (line) => line === id);
      return;
    }
    const positions = lines(area)
      .map((line) => parseInt(line.split("@").pop(), 10))
      .filter((position) => !isNaN(position));
    const next = positions.length ? Math.max(...positions) + 1 : 1;
    addLine(area, id + " @ " + next, (line) => line.split("@")[0].trim() === id);
  }

  // --- items: a list of what the catalog finds, under the field --------------------------------
  for (const area of document.querySelectorAll("textarea[data-item-picker]")) {
    const box = document.createElement("div");
    box.className = "rule-picker";
    const input = document.createElement("input");
    input.type = "text";
    input.id = area.id + "_finder";
    input.size = 40;
    input.autocomplete = "off";
    input.placeholder = "find an item: its id or words of its title";
    input.setAttribute("aria-label", "Find an item in the catalog");
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    const list = document.createElement("ul");
    list.className = "rule-picker-found";
    list.id = area.id + "_found";
    list.setAttribute("role", "listbox");
    list.hidden = true;
    input.setAttribute("aria-controls", list.id);
    box.append(input, list);
    area.after(box);

    let found = [];
    let active = -1;
    let asked = 0;
    let timer = null;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      found = [];
      active = -1;
    }

    function highlight(index) {
      active = index;
      list.querySelectorAll("li[role=option]").forEach((option, n) => {
        option.setAttribute("aria-selected", n === index ? "true" : "false");
        if (n === index) option.scrollIntoView({ block: "nearest" });
      });
    }

    function show(items, message) {
      list.replaceChildren();
      found = items;
      active = -1;
      items.forEach((item, n) => {
        const option = document.createElement("li");
        option.setAttribute("role", "option");
        option.id = list.id + "_" + n;
        option.dataset.itemId = item.id;
        const id = document.createElement("span");
        id.className = "rule-picker-id";
        id.textContent = item.id;
        option.append(id, " · " + item.title + (item.brand ? " (" + item.brand + ")" : ""));
        // mousedown, not click: the field keeps the focus, so the list is still there.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          choose(item);
        });
        list.append(option);
      });
      if (message) {
        const none = document.createElement("li");
        none.className = "rule-picker-none";
        none.textContent = message;
        list.append(none);
      }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function choose(item) {
      addItem(area, item.id);
      input.value = "";
      close();
      input.focus();
    }

    async function lookup() {
      const text = input.value.trim();
      const number = ++asked;
      if (!text) return close();
      if (!customer()) return show([], "Choose the customer first: items are looked up in its catalog.");
      const answer = await ask(catalog.dataset.itemsUrl, { q: text });
      if (number !== asked) return; // a newer lookup is under way
      if (!answer) return show([], "The catalog did not answer; type the id instead.");
      show(answer.items, answer.items.length ? "" : "No item has “" + text + "” in its id or title.");
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(lookup, 150);
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" && found.length) {
        event.preventDefault();
        highlight((active + 1) % found.length);
      } else if (event.key === "ArrowUp" && found.length) {
        event.preventDefault();
        highlight((active - 1 + found.length) % found.length);
      } else if (event.key === "Enter") {
        event.preventDefault(); // not the form's submit
        if (active >= 0) choose(found[active]);
        else if (found.length === 1) choose(found[0]);
      } else if (event.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", close);
  }

  // --- attributes: a name from the catalog's names, then one of the values seen for it ---------
  for (const area of document.querySelectorAll("textarea[data-attribute-picker]")) {
    const box = document.createElement("div");
    box.className = "rule-picker";
    const names = document.createElement("datalist");
    names.id = area.id + "_names";
    const values = document.createElement("datalist");
    values.id = area.id + "_values";
    const name = document.createElement("input");
    name.type = "text";
    name.id = area.id + "_name";
    name.size = 14;
    name.placeholder = "attribute, e.g. color";
    name.setAttribute("aria-label", "Attribute name from the catalog");
    name.setAttribute("list", names.id);
    const value = document.createElement("input");
    value.type = "text";
    value.id = area.id + "_value";
    value.size = 16;
    value.placeholder = "its value";
    value.setAttribute("aria-label", "Attribute value from the catalog");
    value.setAttribute("list", values.id);
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add";
    add.className = "rule-picker-add";
    box.append(name, " = ", value, " ", add, names, values);
    area.after(box);

    function fill(datalist, texts) {
      datalist.replaceChildren(
        ...texts.map((text) => {
          const option = document.createElement("option");
          option.value = text;
          return option;
        }),
      );
    }
    let namesOf = null;
    let valuesOf = null;
    async function loadNames() {
      if (!customer() || namesOf === customer()) return;
      namesOf = customer();
      const answer = await ask(catalog.dataset.attributesUrl, {});
      fill(names, answer ? answer.names : []);
    }
    async function loadValues() {
      const key = customer() + "\n" + name.value.trim();
      if (!customer() || !name.value.trim() || valuesOf === key) return;
      valuesOf = key;
      const answer = await ask(catalog.dataset.attributesUrl, { name: name.value.trim() });
      fill(values, answer ? answer.values : []);
    }
    function append() {
      const key = name.value.trim();
      const wanted = value.value.trim();
      if (!key || !wanted) return;
      addLine(area, key + "=" + wanted, (line) => line.replace(/\s*=\s*/, "=") === key + "=" + wanted);
      value.value = "";
      value.focus();
    }
    name.addEventListener("focus", loadNames);
    name.addEventListener("change", loadValues);
    value.addEventListener("focus", loadValues);
    add.addEventListener("click", append);
    for (const field of [name, value]) {
      field.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault(); // not the form's submit
        if (field === name) value.focus();
        else append();
      });
    }
  }
})();
