// The region picker (templates/hq/_region_picker.html): province → city → district selects that cascade, from
// the shipped administrative divisions (GET /hq/api/regions?parent=<code>), filling one hidden input with the
// most specific code chosen. Without this script the province select alone is the field.
(function () {
  "use strict";

  function fill(select, regions, emptyText) {
    while (select.options.length) select.remove(0);
    select.add(new Option(emptyText, ""));
    regions.forEach(function (r) { select.add(new Option(r.label || r.name, r.code)); });
    select.hidden = regions.length === 0;
  }

  function load(source, parent) {
    return fetch(source + "?parent=" + encodeURIComponent(parent), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (resp) {
      if (!resp.ok) throw new Error("regions " + resp.status);
      return resp.json();
    });
  }

  function init(picker) {
    var name = picker.getAttribute("data-name");
    var source = picker.getAttribute("data-source");
    var province = picker.querySelector('select[data-level="province"]');
    var city = picker.querySelector('select[data-level="city"]');
    var district = picker.querySelector('select[data-level="district"]');
    var allCities = city.options[0].text, allDistricts = district.options[0].text;
    var hidden = document.createElement("input");
    hidden.type = "hidden";
    hidden.name = name;
    province.removeAttribute("name");
    picker.appendChild(hidden);

    function update() { hidden.value = district.value || city.value || province.value || ""; }

    city.hidden = !province.value || city.options.length <= 1;
    district.hidden = !city.value || district.options.length <= 1;
    update();

    province.addEventListener("change", function () {
      fill(city, [], allCities);
      fill(district, [], allDistricts);
      update();
      if (!province.value) return;
      var asked = province.value;
      load(source, asked).then(function (regions) {
        if (province.value === asked) fill(city, regions, allCities);
      }).catch(function () { city.hidden = true; });
    });
    city.addEventListener("change", function () {
      fill(district, [], allDistricts);
      update();
      if (!city.value) return;
      var asked = city.value;
      load(source, asked).then(function (regions) {
        if (city.value === asked) fill(district, regions, allDistricts);
      }).catch(function () { district.hidden = true; });
    });
    district.addEventListener("change", update);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-region-picker]"), init);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
