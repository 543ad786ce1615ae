// nestjs-pg-queue dashboard: progressive enhancement only (every page reads fine without it).
// Live refresh: every few seconds (interval picked by the user, or off; paused while the tab is
// hidden) the page is fetched again and each [data-live] region replaced by its new version,
// keeping checked boxes, open <details> and the scroll position.
(function () {
  'use strict';
  var KEY = 'nestjs-pg-queue.dashboard.refresh';
  var timer = null;
  var busy = false;

  function regions(root) { return Array.prototype.slice.call(root.querySelectorAll('[data-live][id]')); }

  function refresh() {
    if (busy || document.visibilityState !== 'visible') return;
    var active = document.activeElement;
    // NOTE: never swap a region the user is typing in.
    if (active && active.closest && active.closest('[data-live]') && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== 'checkbox') return;
    busy = true;
    fetch(location.href, { credentials: 'same-origin', headers: { 'X-Dashboard-Refresh': '1' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, 'text/html');
        regions(document).forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (!next) return;
          var checked = {};
          old.querySelectorAll('input[type=checkbox]:checked').forEach(function (c) { checked[c.name + '=' + c.value] = true; });
          var open = {};
          old.querySelectorAll('details').forEach(function (d, i) { if (d.open) open[i] = true; });
          old.replaceChildren.apply(old, Array.prototype.slice.call(next.childNodes).map(function (n) { return document.importNode(n, true); }));
          old.querySelectorAll('input[type=checkbox]').forEach(function (c) { if (checked[c.name + '=' + c.value]) c.checked = true; });
          old.querySelectorAll('details').forEach(function (d, i) { if (open[i]) d.open = true; });
        });
        document.dispatchEvent(new CustomEvent('dashboard:refreshed'));
      })
      .catch(function () { /* the next tick tries again */ })
      .then(function () { busy = false; });
  }

  function schedule(seconds) {
    if (timer) clearInterval(timer);
    timer = seconds > 0 ? setInterval(refresh, seconds * 1000) : null;
  }

  document.addEventListener('DOMContentLoaded', function () {
    var select = document.getElementById('refresh-interval');
    if (select && document.querySelector('[data-live]')) {
      var stored = localStorage.getItem(KEY);
      select.value = stored === null ? '5' : stored;
      select.closest('label').hidden = false;
      select.addEventListener('change', function () { localStorage.setItem(KEY, select.value); schedule(Number(select.value)); });
      schedule(Number(select.value));
      document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') refresh(); });
    }
    var page = document.getElementById('select-page');
    if (page) {
      page.hidden = false;
      page.addEventListener('change', function () {
        document.querySelectorAll('#jobs input[name=ids]').forEach(function (c) { c.checked = page.checked; });
      });
    }
  });
})();
