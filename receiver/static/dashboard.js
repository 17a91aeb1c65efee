// Live refresh for the dashboard: follow the page's stream of events (a job's own, a batch's own, or every job's
// on the lists) and, at each event, read the page's JSON (data-live) once and update the page in place; without a stream
// (no EventSource, or while it reconnects) the JSON is read every two seconds instead, and with one a slow look
// catches anything it may miss. Text goes in with textContent only: job data never becomes markup.
(function () {
  "use strict";

  var INTERVAL = 2000;
  var STREAMING_INTERVAL = 30000;
  var EVENT_DELAY = 150;  // events that come together bring one read
  // The list's read runs its filters over every job (a search reads each prompt): on a busy service its events
  // bring one read a second at most, however many jobs change.
  var LIST_GAP = 1000;

  // --- copying a job's commands ------------------------------------------------------------------
  // "Copy as curl" copies the first command as it opens the list of them, and each has its own Copy button.
  // Where the browser has no clipboard for this page (plain http on another host than localhost) or refuses,
  // the command is selected instead, to copy with Ctrl+C. Without a script, the list opens to select by hand.
  function copy(example) {
    var pre = example.querySelector("pre");
    var title = example.querySelector(".title").textContent;
    var said = document.getElementById("copied");
    function selectIt() {
      var range = document.createRange();
      range.selectNodeContents(pre);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      said.textContent = "Selected \u201c" + title + "\u201d: press Ctrl+C (\u2318C on a Mac) to copy it.";
    }
    if (!navigator.clipboard) { selectIt(); return; }
    navigator.clipboard.writeText(pre.textContent).then(function () {
      said.textContent = "Copied \u201c" + title + "\u201d to the clipboard.";
    }, selectIt);
  }
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { copy(button.closest(".example")); });
  });
  document.querySelectorAll("[data-copy-first]").forEach(function (summary) {
    summary.addEventListener("click", function () {
      var first = summary.parentNode.querySelector(".example");
      if (first && !summary.parentNode.open) copy(first);  // as it opens, not as it closes
    });
  });

  var root = document.querySelector("[data-live]");
  if (!root) return;
  var indicator = document.getElementById("live");
  var livebox = document.getElementById("livebox");
  var badge = livebox ? JSON.parse(livebox.getAttribute("data-badge") || "{}") : {};
  var source = root.getAttribute("data-live");
  var timer = null;

  function fillText(node, data) {
    node.querySelectorAll("[data-field]").forEach(function (el) {
      var value = data[el.getAttribute("data-field")];
      var text = value === null || value === undefined ? "" : String(value);
      if (el.textContent !== text) el.textContent = text;
    });
  }

  function fillFields(node, data) {
    fillText(node, data);
    node.querySelectorAll(".status").forEach(function (el) {
      el.className = "status status-" + data.status;
    });
  }

  // An <img>'s picture: the variants its screen needs (srcset, sizes) where the job has them, ``src`` for a browser
  // without them. Set before ``src``, so the browser asks for one picture, not two.
  function pictureOf(img, src, srcset, sizes) {
    if (srcset) {
      img.sizes = sizes;
      img.srcset = srcset;
    }
    img.src = src;
  }

  // --- the list ------------------------------------------------------------------------------
  function fillRow(tr, job) {
    tr.setAttribute("data-job-id", job.id);
    tr.setAttribute("data-status", job.status);
    fillFields(tr, job);
    tr.querySelectorAll("a[data-href]").forEach(function (a) { a.setAttribute("href", job.href); });
    tr.querySelectorAll("a[data-href-field]").forEach(function (a) {
      a.setAttribute("href", job[a.getAttribute("data-href-field")] || "#");
    });
    var link = tr.querySelector(".thumb a");
    link.classList.toggle("video", job.kind === "video");
    if (job.thumbnail && !link.querySelector("img")) {
      var img = document.createElement("img");
      img.alt = "";
      pictureOf(img, job.thumbnail, job.srcset, job.sizes);
      link.appendChild(img);
    }
  }

  // A list page's table from one page of ``items`` (each with its ``id``, kept in the row's ``idAttribute``):
  // ``fill(tr, item)`` writes a row; the "empty" line and the link to the older page follow ``nextCursor``.
  function showPage(items, idAttribute, fill, nextCursor) {
    var body = document.getElementById("rows");
    var template = document.getElementById("row-template");
    var existing = {};
    body.querySelectorAll("tr[" + idAttribute + "]").forEach(function (tr) {
      existing[tr.getAttribute(idAttribute)] = tr;
    });
    var rows = items.map(function (item) {
      var tr = existing[item.id] || template.content.firstElementChild.cloneNode(true);
      fill(tr, item);
      return tr;
    });
    // Same nodes where the item was already shown, so loaded thumbnails are not fetched again.
    var same = rows.length === body.children.length && rows.every(function (tr, i) { return body.children[i] === tr; });
    if (!same) body.replaceChildren.apply(body, rows);
    document.getElementById("empty").hidden = rows.length > 0;
    var older = document.getElementById("older");
    if (nextCursor) {
      var url = new URL(location.href);
      url.searchParams.set("cursor", nextCursor);
      older.href = url.pathname + url.search;
    }
    older.hidden = !nextCursor;
  }

  function updateList(data) {
    showPage(data.jobs, "data-job-id", fillRow, data.next_cursor);
    Object.keys(data.counts).forEach(function (name) {
      var el = root.querySelector('[data-count="' + name + '"]');
      if (el) el.textContent = String(data.counts[name]);
    });
    return true;
  }

  // --- one job -------------------------------------------------------------------------------
  function showVideo(job) {
    var figure = document.getElementById("picture");
    if (!job.video_url || figure.querySelector("video")) return;
    var video = document.createElement("video");
    video.id = "player";
    video.controls = true;
    video.preload = "metadata";
    video.playsInline = true;
    if (job.poster_url) video.poster = job.poster_url;
    if (job.image_width) video.width = job.image_width;
    if (job.image_height) video.height = job.image_height;
    video.src = job.video_url;
    var placeholder = figure.querySelector(".noimage");
    if (placeholder) placeholder.replaceWith(video); else figure.prepend(video);
  }

  function showImage(job) {
    var figure = document.getElementById("picture");
    if (!job.image_url || figure.querySelector("img")) return;
    var link = document.createElement("a");
    link.href = job.image_url;
    var img = document.createElement("img");
    img.alt = "The stored image";
    if (job.image_width) img.width = job.image_width;
    if (job.image_height) img.height = job.image_height;
    pictureOf(img, job.image_url, job.image_srcset, job.image_sizes);
    link.appendChild(img);
    var placeholder = figure.querySelector(".noimage");
    if (placeholder) placeholder.replaceWith(link); else figure.prepend(link);
  }

  function showTimeline(entries) {
    var list = document.getElementById("timeline");
    var items = entries.map(function (entry) {
      var li = document.createElement("li");
      li.className = "tone-" + entry.tone;
      li.setAttribute("data-kind", entry.kind);
      var time = document.createElement("time");
      time.dateTime = entry.at;
      time.textContent = entry.clock;
      var offset = document.createElement("span");
      offset.className = "offset";
      offset.textContent = entry.offset;
      var what = document.createElement("span");
      what.className = "what";
      var title = document.createElement("strong");
      title.textContent = entry.title;
      var text = document.createElement("span");
      text.className = "text";
      text.textContent = entry.text;
      what.append(title, " ", text);
      li.append(time, " ", offset, " ", what);
      return li;
    });
    list.replaceChildren.apply(list, items);
  }

  function showDownload(job) {
    var link = document.getElementById("download");
    var url = job.video_url || job.image_url;
    if (!link || !url || !job.download_name) return;
    link.href = url;
    link.setAttribute("download", job.download_name);
    link.hidden = false;
  }

  function updateJob(data) {
    var job = data.job;
    fillFields(root, job);
    document.getElementById("error").hidden = !job.error_code;
    document.getElementById("waiting").hidden = !job.waiting;
    showImage(job);
    showVideo(job);
    showDownload(job);
    var placeholder = document.querySelector("#picture .noimage");
    if (placeholder && job.terminal) placeholder.textContent = "No image";
    showTimeline(job.timeline);
    root.setAttribute("data-terminal", job.terminal ? "true" : "false");
    var bar = document.getElementById("progress-bar");
    if (bar) {
      bar.hidden = job.progress_percent === null || job.progress_percent === undefined;
      if (!bar.hidden) bar.value = job.progress_percent;
    }
    var cancel = document.getElementById("cancel");
    if (cancel) cancel.hidden = job.terminal;
    // A terminal job never changes again: stop asking, after one more look for the events that
    // are recorded just after the last status change.
    if (job.terminal) finalLooks += 1;
    return finalLooks < 2;
  }
  var finalLooks = 0;

  // --- the batches ---------------------------------------------------------------------------
  // The same rows and older-link as the job list, each a batch with its progress bar.
  function fillBatchRow(tr, batch) {
    tr.setAttribute("data-batch-id", batch.id);
    tr.setAttribute("data-status", batch.status);
    fillFields(tr, batch);
    tr.querySelectorAll("a[data-href]").forEach(function (a) { a.setAttribute("href", batch.href); });
    var key = tr.querySelector("a[data-href-field]");
    if (batch.key_href) key.setAttribute("href", batch.key_href); else key.removeAttribute("href");
    tr.querySelector("progress").value = batch.percent;
  }

  function updateBatchList(data) {
    showPage(data.batches, "data-batch-id", fillBatchRow, data.next_cursor);
    return true;
  }

  // One item of a batch's contact sheet: its status until its thumbnail comes, then the thumbnail.
  function fillTile(li, item) {
    li.setAttribute("data-job-id", item.id);
    li.setAttribute("data-status", item.status);
    var link = li.querySelector("a");
    link.setAttribute("href", item.href);
    link.title = item.title;
    link.classList.toggle("video", item.kind === "video");
    fillText(li, item);
    if (item.thumbnail && !link.querySelector("img")) {
      var img = document.createElement("img");
      img.alt = "";
      img.width = 96;
      img.height = 96;
      pictureOf(img, item.thumbnail, item.srcset, item.sizes);
      var state = link.querySelector(".state");
      if (state) state.replaceWith(img); else link.prepend(img);
    }
  }

  function updateBatch(data) {
    var batch = data.batch;
    root.querySelectorAll(":scope > h1, :scope > .columns").forEach(function (node) { fillText(node, batch); });
    document.getElementById("batch-status").className = "status status-" + batch.status;
    document.getElementById("batch-progress").value = batch.percent;
    Object.keys(batch.by_status).forEach(function (name) {
      var count = root.querySelector('[data-count="' + name + '"]');
      if (!count) return;
      count.textContent = String(batch.by_status[name]);
      count.closest("li").classList.toggle("none", !batch.by_status[name]);
    });
    document.getElementById("cancel").hidden = !batch.running;
    var sheet = document.getElementById("sheet");
    var template = document.getElementById("tile-template");
    var existing = {};
    sheet.querySelectorAll("li[data-job-id]").forEach(function (li) { existing[li.getAttribute("data-job-id")] = li; });
    var tiles = data.tiles.map(function (item) {
      var li = existing[item.id] || template.content.firstElementChild.cloneNode(true);
      fillTile(li, item);
      return li;
    });
    // Same nodes where the item was already shown, so loaded thumbnails are not fetched again.
    var same = tiles.length === sheet.children.length && tiles.every(function (li, i) { return sheet.children[i] === li; });
    if (!same) sheet.replaceChildren.apply(sheet, tiles);
    root.setAttribute("data-batch-ended", batch.ended_flag ? "true" : "false");
    if (data.settled) return false;
    // Ended, its stream closed: a few more looks (every two seconds) for the thumbnails made just after the last
    // images were stored.
    if (batch.ended_flag) endedLooks += 1;
    return endedLooks < 15;
  }
  var endedLooks = 0;

  // --- polling -------------------------------------------------------------------------------
  var update = root.classList.contains("jobpage") ? updateJob : root.classList.contains("batchpage") ? updateBatch
    : root.classList.contains("batchlist") ? updateBatchList : updateList;
  var lists = update === updateList || update === updateBatchList;
  // The page's stream and the event that tells of a change: a job page's own, else as the page says.
  var streamUrl = root.getAttribute("data-stream") || (update === updateJob ? source + "/events" : "/live/events");
  var streamEvent = root.getAttribute("data-stream-event") || "job";

  // The badge's word, the short line beside it and its tooltip are the server's (``LIVE_BADGE``); ``detail`` says
  // when it was last updated, or what went wrong.
  function setIndicator(state, detail) {
    if (!indicator) return;
    var words = badge[state] || { word: state, short: "", title: "" };
    livebox.hidden = false;
    indicator.className = "live " + state;
    indicator.textContent = words.word;
    livebox.title = words.title + " (" + detail + ")";
    document.getElementById("live-why").textContent = words.short;
  }

  var stream = null;

  var due = 0;         // when the read scheduled fires
  var readAt = 0;      // when the last read began
  var changed = false;  // an event came while a read was under way: its answer may be older than the change

  function schedule(delay) {
    clearTimeout(timer);
    if (delay === undefined) delay = stream && stream.readyState === 1 ? STREAMING_INTERVAL : INTERVAL;
    due = Date.now() + delay;
    timer = setTimeout(tick, delay);
  }

  // An event asks for a read soon; one already coming sooner is kept, so a steady stream cannot put it off.
  function soon() {
    var now = Date.now();
    var at = Math.max(now + EVENT_DELAY, lists ? readAt + LIST_GAP : 0);
    if (readAt >= due) { changed = true; return; }  // a read is under way: read again once it is in
    if (due > now && due <= at) return;
    schedule(at - now);
  }

  // The page's stream: its job's events (ending with the job), its batch's (ending with the batch), or every job's
  // for the lists.
  function listen() {
    if (stream || !window.EventSource) return;
    if (update === updateBatch && root.getAttribute("data-batch-ended") === "true") return;  // its stream has ended
    stream = new EventSource(streamUrl);
    stream.addEventListener(streamEvent, soon);
    stream.addEventListener("open", function () {
      setIndicator("ok", "following this page's events");
      schedule();
    });
    stream.addEventListener("error", function () {
      // The browser reconnects by itself (with Last-Event-ID) unless the stream was refused or has ended.
      if (stream && stream.readyState === 2) stream = null;
      schedule(INTERVAL);
    });
  }

  function quiet() {
    if (stream) stream.close();
    stream = null;
  }

  function tick() {
    if (document.hidden) return;  // resumed by visibilitychange
    readAt = Date.now();
    changed = false;
    fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          location.assign("/signin?next=" + encodeURIComponent(location.pathname + location.search));
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (data === null) return;
        var more = update(data);
        setIndicator(more ? "ok" : "done", "updated " + new Date().toLocaleTimeString());
        if (!more) { quiet(); return; }
        listen();
        schedule();
        if (changed) soon();
      })
      .catch(function (error) {
        setIndicator("offline", "could not refresh: " + error.message + "; retrying");
        schedule();
      });
  }

  var ended = function () {
    return (update === updateJob && root.getAttribute("data-terminal") === "true")
      || (update === updateBatch && root.getAttribute("data-settled") === "true");
  };
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { quiet(); return; }  // a hidden page holds no stream open
    if (!ended()) tick();
  });
  if (ended()) {
    setIndicator("done", update === updateJob ? "this job is finished" : "this batch is finished");
  } else {
    setIndicator("ok", "following this page's events");
    listen();
    schedule();
  }
})();
