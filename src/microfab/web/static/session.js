/* Forms posted with the sign-in cookie carry the session's CSRF token. Panels that the live
   stream swaps in are rendered once for every viewer, so their hidden field is empty: fill it
   from the page's meta tag just before the form is sent. */
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  if (!token) { return; }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "").toLowerCase() !== "post") { return; }
    var field = form.querySelector('input[name="csrf_token"]');
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "csrf_token";
      form.appendChild(field);
    }
    if (!field.value) { field.value = token; }
  }, true);
})();
