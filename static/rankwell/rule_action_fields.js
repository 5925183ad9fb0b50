"use strict";
// The rule form shows only the fields of the chosen action (rows holding an error stay visible).
// Which fields each action has comes from the form (merchandising/forms.py ACTION_FRAGMENTS).
(function () {
  const select = document.getElementById("id_action_kind");
  if (!select || !select.dataset.actionFields) return;
  const fieldsOf = JSON.parse(select.dataset.actionFields);
  const all = [...new Set(Object.values(fieldsOf).flat())];
  function update() {
    const shown = fieldsOf[select.value] || all;
    for (const name of all) {
      const row = document.querySelector(".form-row.field-" + name) ||
        document.querySelector(".field-" + name);
      if (!row) continue;
      const hasError = row.querySelector(".errorlist") !== null;
      row.hidden = !shown.includes(name) && !hasError;
    }
  }
  select.addEventListener("change", update);
  update();
})();
