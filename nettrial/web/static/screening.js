// Stage and grade as they are computed: when a pathology field of the screening record form
// changes, post the pathology fields to /screening/stage-preview and swap in the panel it returns.
// Without this script the panel is computed when the record is saved; the form works the same.
(() => {
  const form = document.querySelector("form[data-stage-preview]");
  const panel = document.getElementById("stage-panel");
  if (!form || !panel) return;
  let pending = null;
  form.addEventListener("change", async (event) => {
    const name = event.target.name || "";
    if (!name.startsWith("pathology.")) return;
    const body = new FormData();
    for (const [key, value] of new FormData(form)) {
      if (key === "csrf_token" || key.startsWith("pathology.")) body.append(key, value);
    }
    if (pending) pending.abort();
    pending = new AbortController();
    try {
      const response = await fetch(form.dataset.stagePreview, {
        method: "POST", body, signal: pending.signal, credentials: "same-origin",
      });
      if (!response.ok) return;
      const wasOpen = panel.querySelector("details")?.open;
      panel.innerHTML = await response.text();  // aria-live on the panel announces the new stage
      const details = panel.querySelector("details");
      if (details && wasOpen) details.open = true;
      panel.dataset.updated = String(Date.now());
    } catch (error) {
      if (error.name !== "AbortError") console.error(error);
    }
  });
})();
