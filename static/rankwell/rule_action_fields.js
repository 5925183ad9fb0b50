"use strict";
// The rule form shows only the fields of the chosen action (rows holding an error stay visible).
(function () {
  const fieldsOf = {
    boost: ["action_strength", "action_factor"],
    bury: ["action_strength", "action_factor"],
    pin: ["action_pins"],
    slot: ["slot_positions"],
    hide: [],
    diversity: ["diversity_field", "diversity_max_items", "diversity_top_k"],
  };
  const all = [...new Set(Object.values(fieldsOf).flat())];
  const select = document.getElementById("id_action_kind");
  if (!select) return;
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
