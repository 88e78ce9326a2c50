// The issue form: choosing a SKU fills in its case pack as the case size (still editable).
(function () {
  "use strict";
  var sku = document.getElementById("sku_id");
  var caseSize = document.getElementById("case_size");
  if (!sku || !caseSize) { return; }
  sku.addEventListener("change", function () {
    var option = sku.options[sku.selectedIndex];
    if (option && option.dataset.casePack && !caseSize.dataset.touched) { caseSize.value = option.dataset.casePack; }
  });
  caseSize.addEventListener("input", function () { caseSize.dataset.touched = "1"; });
}());
