// Small progressive enhancement only: every form works without it.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches("[data-autosubmit]")) target.form.requestSubmit();
});
// Focus the first field reported in error, so keyboard and screen-reader users land on it.
document.addEventListener("DOMContentLoaded", () => {
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
});
