/* The shift report's screen controls: pick another shift, print. A file, not inline handlers:
   the content security policy allows no inline script. (The PDF is printed without it.) */
(function () {
  var pick = document.getElementById("shift-pick");
  if (pick) {
    pick.addEventListener("change", function () {
      var v = pick.value.split("|");
      pick.form.day.value = v[0];
      pick.form.shift.value = v[1];
      pick.form.submit();
    });
  }
  var print = document.getElementById("print-report");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
})();
