// The participant page's small enhancements; every form works without them.
(() => {
  "use strict";

  // Adverse events: the CTCAE suggestion and the dose recommendation follow the term and the grade,
  // without a submit. The server renders them (POST .../adverse-events/preview, nothing is saved).
  const form = document.querySelector("form[data-preview]");
  if (form) {
    let pending = null;
    let termChanged = false; // kept until a response arrives: a later request must not lose it
    // The contents change, not the element: the assessment is a live region, announced when it changes.
    const swap = (fragment, id) => {
      const fresh = fragment.querySelector(`#${id}`);
      const current = document.getElementById(id);
      if (fresh && current) current.innerHTML = fresh.innerHTML;
    };
    const refresh = async (term) => {
      termChanged = termChanged || term;
      if (pending) pending.abort();
      pending = new AbortController();
      const body = new FormData(form);
      try {
        const response = await fetch(form.dataset.preview, {
          method: "POST",
          body,
          credentials: "same-origin",
          signal: pending.signal,
        });
        if (!response.ok) return;
        const fragment = document.createElement("template");
        fragment.innerHTML = await response.text();
        if (termChanged) swap(fragment.content, "ae-questions");
        swap(fragment.content, "ae-assessment");
        termChanged = false;
      } catch (error) {
        if (error.name !== "AbortError") throw error;
      }
    };
    form.addEventListener("change", (event) => {
      const name = event.target.name || "";
      if (name === "term" || name === "grade") refresh(name === "term");
      else if (name.startsWith("answers.") || name.startsWith("measures.") || name === "value") refresh(false);
    });
  }

  // Laboratory results: offer only the units of the chosen test (all are listed without JavaScript).
  for (const units of document.querySelectorAll("select[data-units-for]")) {
    const test = document.getElementById(units.dataset.unitsFor);
    if (!test) continue;
    const filter = () => {
      for (const group of units.querySelectorAll("optgroup")) {
        const shown = !test.value || group.dataset.test === test.value;
        group.hidden = !shown;
        group.disabled = !shown;
      }
      const chosen = units.selectedOptions[0];
      if (chosen && chosen.parentElement.disabled) units.value = "";
    };
    test.addEventListener("change", filter);
    filter();
  }
})();
