"use strict";
// The workbench: drag an item's card onto another card to pin it at that card's position. It
// sends the card's own pin form (the same request as typing the position and pressing Pin), so
// the keyboard way and the mouse way write the same draft.
(function () {
  const grid = document.getElementById("grid");
  if (!grid) return;
  let dragged = null;
  for (const card of grid.querySelectorAll(".bench-card")) {
    const form = card.querySelector("form.card-actions");
    if (!form) continue;
    card.draggable = true;
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.itemId);
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      dragged = null;
    });
    card.addEventListener("dragover", (event) => {
      if (dragged && dragged !== card) {
        event.preventDefault();
        card.classList.add("drop-target");
      }
    });
    card.addEventListener("dragleave", () => card.classList.remove("drop-target"));
    card.addEventListener("drop", (event) => {
      event.preventDefault();
      card.classList.remove("drop-target");
      if (!dragged || dragged === card) return;
      const draggedForm = dragged.querySelector("form.card-actions");
      draggedForm.querySelector("input[name=position]").value = card.dataset.position;
      draggedForm.requestSubmit(draggedForm.querySelector("button.do-pin"));
    });
  }
})();
