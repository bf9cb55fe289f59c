// Added to the dashboard before it loads, by the measurements of its
// render time (BenchmarkDashboard1000Instances, TestWebDashboard1000Real):
// times each snapshot and stats event of the live stream, with the page's
// own listeners, from the moment the page receives it (whole) to the end
// of the handler (js), to style and layout done (laid), and to the first
// frame out after it (painted: requestAnimationFrame runs just before the
// frame, the task it queues after it). Results gather in tendRenders.
window.tendRenders = [];
(() => {
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== 'snapshot' && type !== 'stats') return add.call(this, type, fn, opts);
    return add.call(this, type, (e) => {
      const t0 = performance.now();
      fn(e);
      const js = performance.now() - t0;
      document.body.offsetHeight; // style and layout, now
      const laid = performance.now() - t0;
      requestAnimationFrame(() => setTimeout(() => window.tendRenders.push({
        type, js, laid, painted: performance.now() - t0, bytes: e.data.length,
        rows: document.querySelectorAll('tr.inst').length,
      })));
    }, opts);
  };
})();
