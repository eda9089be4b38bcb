/* Operator pages: +/- steppers for counts; the operator's name is kept for the next form. */
(function () {
  document.querySelectorAll(".stepper button[data-step]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = button.parentElement.querySelector("input");
      var value = (parseInt(input.value, 10) || 0) + parseInt(button.dataset.step, 10);
      input.value = Math.max(0, value);
    });
  });
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }  /* the token makes a second tap harmless anyway */
    });
  });
  var saved = document.getElementById("saved") || document.getElementById("error");
  if (saved) { saved.scrollIntoView({ block: "center" }); }
})();
