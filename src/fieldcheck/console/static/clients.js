// The clients' pages: the new campaign's live pay check, store references read from a file, and
// forms that say they are being sent. The server checks everything again.
"use strict";
(function () {
  function cents(typed) {
    var text = String(typed || "").replace(/\s/g, "").replace(",", ".");
    if (!/^\d+(\.\d{1,2})?$/.test(text)) return null;
    var parts = text.split(".");
    return parseInt(parts[0], 10) * 100 + (parts[1] ? parseInt((parts[1] + "0").slice(0, 2), 10) : 0);
  }
  function money(value, currency) {
    return (value / 100).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + " " + currency;
  }

  var form = document.getElementById("campaign-form");
  if (form) {
    var floors = JSON.parse(form.dataset.floors || "{}");
    var feeBps = parseInt(form.dataset.feeBps || "0", 10);
    var storeTotal = parseInt(form.dataset.storeTotal || "0", 10);
    var searchCount = null;
    var submit = document.getElementById("create-campaign");
    var field = function (name) { return form.elements.namedItem(name); };
    var show = function (id, text) { document.getElementById(id).textContent = text; };
    var references = function () {
      var seen = {};
      field("store_refs").value.split(/[\n,;]/).forEach(function (line) {
        var ref = line.trim();
        if (ref) seen[ref] = true;
      });
      return Object.keys(seen).length;
    };
    var storesChosen = function () {
      var mode = (form.querySelector("input[name=stores]:checked") || {}).value;
      if (mode === "search") return searchCount;
      if (mode === "refs") return references();
      return storeTotal;
    };
    var update = function () {
      var currency = field("currency").value;
      var reward = cents(field("reward").value);
      var minutes = parseInt(field("estimated_minutes").value, 10);
      var perStore = parseInt(field("slots_per_store").value, 10);
      var floor = floors[currency];
      var stores = storesChosen();
      show("floor", floor === undefined ? "–" : money(floor, currency));
      show("stores-n", stores === null ? "…" : String(stores));
      var verdict = document.getElementById("verdict");
      verdict.className = "verdict";
      if (reward === null || reward <= 0 || !(minutes > 0)) {
        show("hourly", "–"); show("fee", "–"); show("hold", "–"); show("slots", "–");
        verdict.textContent = "Give a reward and an estimate to see the hourly pay.";
        submit.disabled = false;
        return;
      }
      var fee = Math.ceil(reward * feeBps / 10000);
      show("hourly", money(Math.floor(reward * 60 / minutes), currency));
      show("fee", money(fee, currency));
      if (stores !== null && perStore > 0) {
        show("slots", String(stores * perStore));
        show("hold", money(stores * perStore * (reward + fee), currency));
      } else {
        show("slots", "–"); show("hold", "–");
      }
      if (floor !== undefined && reward * 60 < floor * minutes) {
        var minReward = Math.ceil(floor * minutes / 60);
        var maxMinutes = Math.floor(reward * 60 / floor);
        verdict.className = "verdict fail";
        verdict.textContent = "Below the floor by " + money(floor - Math.floor(reward * 60 / minutes), currency) +
          " an hour: raise the reward to " + money(minReward, currency) + " (" + money(minReward - reward, currency) +
          " more)" + (maxMinutes > 0 ? " or lower the estimate to " + maxMinutes + " minutes." : ".");
        submit.disabled = true;
      } else {
        verdict.className = "verdict ok";
        verdict.textContent = "At or above the floor.";
        submit.disabled = false;
      }
    };
    var timer = null;
    var countSearch = function () {
      var words = field("stores_search").value.trim();
      if (!words) { searchCount = 0; show("search-count", ""); update(); return; }
      searchCount = null;
      update();
      fetch("/console/stores/count?q=" + encodeURIComponent(words), { headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.json(); })
        .then(function (body) {
          searchCount = body.count;
          show("search-count", body.count + " store(s) match.");
          update();
        });
    };
    form.addEventListener("input", function (event) {
      if (event.target.name === "stores_search") {
        form.querySelector("input[name=stores][value=search]").checked = true;
        clearTimeout(timer);
        timer = setTimeout(countSearch, 250);
      } else if (event.target.name === "store_refs") {
        form.querySelector("input[name=stores][value=refs]").checked = true;
      }
      update();
    });
    form.addEventListener("change", function (event) {
      if (event.target.name === "stores" && event.target.value === "search") countSearch();
      update();
    });
    document.getElementById("f-refs-file").addEventListener("change", function (event) {
      var file = event.target.files && event.target.files[0];
      if (!file) return;
      file.text().then(function (content) {
        var refs = content.split(/\r?\n/).map(function (line) {
          return line.split(/[;,]/)[0].replace(/^"|"$/g, "").trim();
        }).filter(function (ref, i) { return ref && !(i === 0 && ref === "external_ref"); });
        field("store_refs").value = refs.join("\n");
        form.querySelector("input[name=stores][value=refs]").checked = true;
        update();
      });
    });
    if (form.querySelector("input[name=stores]:checked").value === "search") countSearch();
    update();
  }

  var deposit = document.getElementById("deposit-form");
  if (deposit) {
    deposit.addEventListener("submit", function () {
      // A second click would send the same key (deposited once): the button says it is on its way.
      var button = document.getElementById("deposit");
      button.disabled = true;
      button.textContent = "Depositing…";
    });
  }
})();
