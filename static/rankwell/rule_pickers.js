"use strict";
// Pickers for the rule form's one-per-line fields (textarea[data-picker]): a field under each
// that completes from the catalog (the datalist the attribute names) and an "Add" button that
// appends the value as a line, unless it is there already. Enter in the field adds too.
(function () {
  for (const area of document.querySelectorAll("textarea[data-picker]")) {
    const list = document.getElementById(area.dataset.picker);
    if (!list) continue;
    const box = document.createElement("div");
    box.className = "rule-picker";
    const input = document.createElement("input");
    input.type = "text";
    input.setAttribute("list", list.id);
    input.id = area.id + "_picker";
    input.setAttribute("aria-label", "Pick from the catalog");
    input.placeholder = "start typing: the catalog's values complete";
    input.size = 40;
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add";
    add.className = "rule-picker-add";
    function append() {
      const value = input.value.trim();
      if (!value) return;
      const lines = area.value.split("\n").map((line) => line.trim()).filter(Boolean);
      if (!lines.some((line) => line.toLowerCase() === value.toLowerCase())) lines.push(value);
      area.value = lines.join("\n");
      input.value = "";
      input.focus();
    }
    add.addEventListener("click", append);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault(); // not the form's submit
        append();
      }
    });
    box.append(input, " ", add);
    area.after(box);
  }
})();

// The rule form's windows (textarea[data-window-picker]): two date-and-time pickers, in the
// shop's time like the lines themselves (data-zone names it when the form knows one shop), and
// an "Add window" button that appends "start / end" as a line ('open' for a side left blank).
(function () {
  for (const area of document.querySelectorAll("textarea[data-window-picker]")) {
    const box = document.createElement("div");
    box.className = "rule-picker window-picker";
    const zone = area.dataset.zone ? " (" + area.dataset.zone + ")" : " (the shop's time)";
    function picker(name, words) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "datetime-local";
      input.id = area.id + "_" + name;
      label.htmlFor = input.id;
      label.textContent = words;
      return [label, input];
    }
    const [fromLabel, from] = picker("from", "From");
    const [untilLabel, until] = picker("until", "until");
    const note = document.createElement("span");
    note.className = "help";
    note.textContent = zone.trim();
    const add = document.createElement("button");
    add.type = "button";
    add.textContent = "Add window";
    add.className = "rule-picker-add";
    add.addEventListener("click", function () {
      if (!from.value && !until.value) {
        from.focus();
        return;
      }
      const side = (input) => (input.value ? input.value.replace("T", " ") : "open");
      const lines = area.value.split("\n").map((line) => line.trim()).filter(Boolean);
      lines.push(side(from) + " / " + side(until));
      area.value = lines.join("\n");
      from.value = "";
      until.value = "";
      from.focus();
    });
    box.append(fromLabel, " ", from, " ", untilLabel, " ", until, " ", note, " ", add);
    area.after(box);
  }
})();
