"use strict";
// The workbench (templates/explain/workbench.html).
//
// Drag a card to a place to pin it there: SortableJS (static/vendor/sortablejs/, 1.15.7, MIT)
// moves the card, and the drop sends the card's own pin form with that place, by pressing its
// Pin button: the same request as typing the place in "Pin to #" and pressing Pin, which is the
// way from the keyboard. So the mouse and the keyboard write the same draft.
//
// htmx (static/vendor/htmx/, 2.0.11, 0BSD) sends the page's forms in place and replaces
// #bench-page with the server's answer; this script sets the grid up again in each new part,
// keeps the keyboard's place when the element that had the focus is gone, and falls back to
// loading the page when the answer is not the workbench's (e.g. the sign-in page).
(function () {
  function setUpGrid(root) {
    const grid = root.id === "grid" ? root : root.querySelector && root.querySelector("#grid");
    if (!grid || !("pinByDrag" in grid.dataset) || grid.dataset.sortable) return;
    if (typeof Sortable === "undefined") return; // the buttons still work
    grid.dataset.sortable = "on";
    let places = [];
    Sortable.create(grid, {
      draggable: ".bench-card[data-draggable]",
      // The card's fields and buttons stay clickable and focusable: no drag starts on them.
      filter: "input, select, textarea, button, a",
      preventOnFilter: false,
      animation: 150,
      ghostClass: "dragging",
      chosenClass: "chosen",
      onStart: function () {
        places = Array.from(grid.children, (card) => card.dataset.position);
      },
      onEnd: function (event) {
        if (event.oldIndex === event.newIndex || !places[event.newIndex]) return;
        const form = event.item.querySelector("form.card-actions");
        if (!form) return;
        form.querySelector("input[name=position]").value = places[event.newIndex];
        form.querySelector("button.do-pin").click();
      },
    });
  }

  if (typeof htmx === "undefined") {
    // Without htmx every form is a plain request; the drag still pins.
    document.addEventListener("DOMContentLoaded", () => setUpGrid(document));
    return;
  }

  htmx.onLoad(setUpGrid);

  document.addEventListener("htmx:beforeSwap", function (event) {
    // An answer from elsewhere (a session that expired answers with the sign-in page) is
    // shown as a page of its own, not put inside this one.
    const url = event.detail.xhr && event.detail.xhr.responseURL;
    if (url && new URL(url).pathname !== new URL(document.location.href).pathname) {
      event.detail.shouldSwap = false;
      window.location.assign(url);
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    const page = document.getElementById("bench-page");
    if (page && page.contains(event.target)) page.setAttribute("aria-busy", "true");
  });

  document.addEventListener("htmx:responseError", function (event) {
    // The server refused (403, 404, 500): say so where the messages go.
    const status = document.getElementById("bench-messages");
    if (!status) return;
    const list = document.createElement("ul");
    list.className = "messagelist";
    const item = document.createElement("li");
    item.className = "error";
    item.textContent =
      "Nothing changed: the server answered " + event.detail.xhr.status + ". Reload the page.";
    list.append(item);
    status.replaceChildren(list);
    const page = document.getElementById("bench-page");
    if (page) page.removeAttribute("aria-busy");
  });

  document.addEventListener("htmx:afterSettle", function () {
    const page = document.getElementById("bench-page");
    if (page) page.removeAttribute("aria-busy");
    // The button pressed was replaced with the rest of the page: the focus goes to what the
    // change did (the message), or to the grid's heading, not back to the page's top.
    const active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    const status = document.getElementById("bench-messages");
    const heading = document.getElementById("grid-title");
    if (status && status.textContent.trim()) {
      status.focus({ preventScroll: true });
    } else if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  });
})();
