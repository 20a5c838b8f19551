/* The workflow builder on a version's admin page: form designer, step editor, diagram links, Simulate.
   Plain script, no dependency, no build step. The server stays the judge: everything typed here is
   posted as the usual admin form and validated by workflows.validation. */
"use strict";
(function () {
  const TYPES = [
    ["text", "Text"], ["textarea", "Long text"], ["number", "Number"], ["money", "Money"],
    ["date", "Date"], ["choice", "Choice"], ["multi", "Multiple choice"], ["boolean", "Yes / no"],
    ["email", "E-mail"], ["person", "Person"], ["department", "Department"], ["file", "File"],
  ];
  // Keywords the designer writes; every other keyword of a field is kept as it was.
  const MANAGED = ["type", "title", "description", "minimum", "maximum", "minLength", "maxLength", "enum",
    "items", "uniqueItems", "format", "multipleOf", "x-widget", "minItems", "maxItems"];
  const WIDGETS = ["textarea", "money", "person", "department", "file"];
  const HAS_RANGE = {text: "length", textarea: "length", number: "value", money: "value", multi: "items"};
  const HAS_OPTIONS = new Set(["choice", "multi"]);

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k in node && typeof v !== "string") node[k] = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  };

  function inferType(p) {
    if (WIDGETS.includes(p["x-widget"])) return p["x-widget"];
    if (p.type === "array") return "multi";
    if (p.type === "boolean") return "boolean";
    if (p.type === "number" || p.type === "integer") return "number";
    if (Array.isArray(p.enum)) return "choice";
    if (p.format === "date") return "date";
    if (p.format === "email") return "email";
    return "text";
  }

  // The database stores a schema as jsonb, which does not keep key order: the designer's order is
  // kept in "x-field-order" (fields it does not name follow, as stored).
  function orderedEntries(schema) {
    const props = (schema && schema.properties) || {};
    const order = Array.isArray(schema && schema["x-field-order"]) ? schema["x-field-order"] : [];
    const keys = [...order.filter((k) => k in props), ...Object.keys(props).filter((k) => !order.includes(k))];
    return keys.map((k) => [k, props[k]]);
  }

  function fieldsFrom(schema) {
    const required = new Set((schema && schema.required) || []);
    return orderedEntries(schema).map(([key, p]) => {
      p = p && typeof p === "object" ? p : {};
      const type = inferType(p);
      const range = HAS_RANGE[type];
      const [lo, hi] = range === "length" ? ["minLength", "maxLength"] : range === "items" ? ["minItems", "maxItems"] : ["minimum", "maximum"];
      const options = type === "multi" ? (p.items && p.items.enum) || [] : p.enum || [];
      return {key, label: p.title || key, type, required: required.has(key), help: p.description || "",
        min: p[lo] ?? "", max: p[hi] ?? "", options: options.join(", "), extra: p, autoKey: false};
    });
  }

  function schemaFrom(fields, base) {
    const out = {};
    for (const [k, v] of Object.entries(base || {})) if (!["properties", "required", "x-field-order"].includes(k)) out[k] = v;
    out.type = "object";
    out.properties = {};
    for (const f of fields) {
      if (!f.key) continue;
      const p = {};
      for (const [k, v] of Object.entries(f.extra || {})) if (!MANAGED.includes(k)) p[k] = v;
      const options = f.options.split(",").map((s) => s.trim()).filter(Boolean);
      Object.assign(p, {
        text: {type: "string"}, textarea: {type: "string", "x-widget": "textarea"},
        number: {type: "number"}, money: {type: "number", multipleOf: 0.01, "x-widget": "money"},
        date: {type: "string", format: "date"}, choice: {type: "string", enum: options},
        multi: {type: "array", items: {type: "string", enum: options}, uniqueItems: true},
        boolean: {type: "boolean"}, email: {type: "string", format: "email"},
        person: {type: "string", format: "email", "x-widget": "person"},
        department: {type: "string", "x-widget": "department"}, file: {type: "string", "x-widget": "file"},
      }[f.type]);
      if (f.type === "number" && (f.extra || {}).type === "integer") p.type = "integer"; // whole numbers stay whole
      if (f.label && f.label !== f.key) p.title = f.label;
      if (f.help) p.description = f.help;
      const range = HAS_RANGE[f.type];
      const [lo, hi] = range === "length" ? ["minLength", "maxLength"] : range === "items" ? ["minItems", "maxItems"] : ["minimum", "maximum"];
      if (range && f.min !== "" && !isNaN(Number(f.min))) p[lo] = Number(f.min);
      if (range && f.max !== "" && !isNaN(Number(f.max))) p[hi] = Number(f.max);
      out.properties[f.key] = p;
    }
    const required = fields.filter((f) => f.key && f.required).map((f) => f.key);
    if (required.length) out.required = required;
    out["x-field-order"] = Object.keys(out.properties);
    return out;
  }

  const optionsHint = (type) => (HAS_OPTIONS.has(type) ? "a, b, c" : "");

  const keyFor = (label) => {
    let key = label.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "");
    if (/^[0-9]/.test(key)) key = "f_" + key;
    return key === "requester" ? "requester_field" : key;
  };

  // --- the requester's form (preview, and the Simulate panel's input) ---------------------------
  function renderPreview(fields, choices) {
    document.querySelectorAll(".wf-preview-body").forEach((body) => {
      body.replaceChildren();
      if (!fields.length) body.append(el("p", {class: "help"}, "No fields yet: add one on the left."));
      for (const f of fields) {
        if (!f.key) continue;
        const id = "wf-prev-" + f.key;
        const label = el("label", {for: id}, f.label || f.key, f.required ? el("span", {class: "wf-req"}, " *") : "");
        let input;
        const options = f.options.split(",").map((s) => s.trim()).filter(Boolean);
        if (f.type === "textarea") input = el("textarea", {rows: "3"});
        else if (f.type === "choice") {
          input = el("select", {}, el("option", {value: ""}, "—"));
          options.forEach((o) => input.append(el("option", {value: o}, o)));
        } else if (f.type === "multi") {
          input = el("span", {class: "wf-multi"});
          options.forEach((o) => input.append(el("label", {}, el("input", {type: "checkbox", value: o}), " " + o)));
        } else {
          const kind = {number: "number", money: "number", date: "date", boolean: "checkbox", email: "email",
            person: "email", file: "file"}[f.type] || "text";
          input = el("input", {type: kind});
          if (f.type === "money") input.setAttribute("step", "0.01");
          if (f.type === "person") input.setAttribute("list", "wf-users");
          if (f.type === "department") input.setAttribute("list", "wf-departments");
        }
        input.id = id;
        input.dataset.key = f.key;
        input.dataset.type = f.type;
        input.classList.add("wf-prev-input");
        const row = el("div", {class: "wf-prev-row"}, label, input);
        if (f.help) row.append(el("div", {class: "help"}, f.help));
        body.append(row);
      }
    });
  }

  function sampleData() {
    const data = {};
    document.querySelectorAll(".wf-prev-input").forEach((input) => {
      const {key, type} = input.dataset;
      if (type === "multi") {
        const picked = [...input.querySelectorAll("input:checked")].map((c) => c.value);
        if (picked.length) data[key] = picked;
      } else if (type === "boolean") data[key] = input.checked;
      else if (type === "file") { if (input.files && input.files.length) data[key] = input.files[0].name; }
      else if (input.value !== "") data[key] = type === "number" || type === "money" ? Number(input.value) : input.value;
    });
    return data;
  }

  // --- the designer -------------------------------------------------------------------------------
  function designer(raw, choices, onFields) {
    let base = {};
    let fields = [];
    const tbody = document.querySelector("#wf-fields tbody");
    const rawError = document.getElementById("wf-raw-error");

    const write = () => {
      const schema = schemaFrom(fields, base);
      raw.value = JSON.stringify(schema, null, 2);
      onFields(fields);
    };
    const load = () => {
      try {
        const parsed = raw.value.trim() ? JSON.parse(raw.value) : {};
        if (typeof parsed !== "object" || Array.isArray(parsed) || parsed === null) throw new Error("not a JSON object");
        base = parsed;
        fields = fieldsFrom(parsed);
        rawError.hidden = true;
        draw();
        onFields(fields);
      } catch (err) {
        rawError.textContent = "The schema is not valid JSON (" + err.message + "); the rows show the last good one.";
        rawError.hidden = false;
        document.getElementById("wf-advanced").open = true;
      }
    };
    function draw() {
      tbody.replaceChildren();
      fields.forEach((f, i) => {
        const input = (cls, value, attrs = {}) => {
          const node = el("input", {class: cls, value: String(value), ...attrs});
          return node;
        };
        const type = el("select", {class: "wf-f-type"});
        TYPES.forEach(([v, label]) => type.append(el("option", {value: v}, label)));
        type.value = f.type;
        const required = el("input", {type: "checkbox", class: "wf-f-required"});
        required.checked = f.required;
        const range = HAS_RANGE[f.type];
        const min = input("wf-f-min", f.min, {size: "3", placeholder: range === "length" ? "len" : ""});
        const max = input("wf-f-max", f.max, {size: "3", placeholder: range === "length" ? "len" : ""});
        min.disabled = max.disabled = !range;
        const options = input("wf-f-options", f.options, {size: "10", placeholder: optionsHint(f.type)});
        options.disabled = !HAS_OPTIONS.has(f.type);
        const tr = el("tr", {"data-index": String(i)},
          el("td", {class: "wf-move"},
            el("button", {type: "button", class: "wf-up", title: "Move up", disabled: i === 0}, "↑"),
            el("button", {type: "button", class: "wf-down", title: "Move down", disabled: i === fields.length - 1}, "↓")),
          el("td", {}, input("wf-f-label", f.label, {size: "12", placeholder: "Label"})),
          el("td", {}, input("wf-f-key", f.key, {size: "10", placeholder: "key"})),
          el("td", {}, type), el("td", {}, required),
          el("td", {}, input("wf-f-help", f.help, {size: "11"})),
          el("td", {}, min), el("td", {}, max), el("td", {}, options),
          el("td", {}, el("button", {type: "button", class: "wf-remove", title: "Remove the field"}, "✕")));
        tbody.append(tr);
      });
    }
    tbody.addEventListener("input", (e) => {
      const tr = e.target.closest("tr");
      const f = fields[Number(tr.dataset.index)];
      const cls = e.target.className;
      if (cls === "wf-f-label") {
        f.label = e.target.value;
        if (f.autoKey || !f.key) { f.key = keyFor(f.label); f.autoKey = true; tr.querySelector(".wf-f-key").value = f.key; }
      } else if (cls === "wf-f-key") { f.key = e.target.value.trim(); f.autoKey = false; }
      else if (cls === "wf-f-help") f.help = e.target.value;
      else if (cls === "wf-f-min") f.min = e.target.value;
      else if (cls === "wf-f-max") f.max = e.target.value;
      else if (cls === "wf-f-options") f.options = e.target.value;
      write();
    });
    tbody.addEventListener("change", (e) => {
      const tr = e.target.closest("tr");
      const f = fields[Number(tr.dataset.index)];
      if (e.target.classList.contains("wf-f-type")) { f.type = e.target.value; draw(); }
      if (e.target.classList.contains("wf-f-required")) f.required = e.target.checked;
      write();
    });
    tbody.addEventListener("click", (e) => {
      const button = e.target.closest("button");
      if (!button) return;
      const i = Number(button.closest("tr").dataset.index);
      if (button.classList.contains("wf-remove")) fields.splice(i, 1);
      else if (button.classList.contains("wf-up")) fields.splice(i - 1, 0, ...fields.splice(i, 1));
      else if (button.classList.contains("wf-down")) fields.splice(i + 1, 0, ...fields.splice(i, 1));
      draw();
      write();
    });
    document.getElementById("wf-add-field").addEventListener("click", () => {
      fields.push({key: "", label: "", type: "text", required: false, help: "", min: "", max: "", options: "", extra: {}, autoKey: true});
      draw();
      tbody.querySelector("tr:last-child .wf-f-label").focus();
    });
    raw.addEventListener("change", load);
    load();
  }

  // --- the step editor ----------------------------------------------------------------------------
  const APPLIES = {
    approver_ref: (v) => ["user", "role", "form_field"].includes(v.approver_type),
    quorum_count: (v) => v.mode === "quorum",
    reminder_at_percent: (v) => v.sla_hours !== "",
    escalate_to: (v) => v.sla_hours !== "",
    escalate_to_ref: (v) => v.sla_hours !== "" && ["role", "user"].includes(v.escalate_to),
    on_breach: (v) => v.sla_hours !== "",
    escalation_repeat_hours: (v) => v.sla_hours !== "" && v.escalate_to !== "",
    max_escalations: (v) => v.sla_hours !== "" && v.escalate_to !== "",
  };
  const REF_LIST = {user: "wf-users", role: "wf-roles", form_field: "wf-person-fields"};

  function stepRow(row, getFields) {
    const prefix = row.id;
    if (!prefix || prefix.endsWith("-empty")) return;
    const field = (name) => row.querySelector(`[name="${prefix}-${name}"]`);
    const refresh = () => {
      const v = {};
      ["approver_type", "mode", "sla_hours", "escalate_to"].forEach((n) => { v[n] = field(n) ? field(n).value : ""; });
      for (const [name, applies] of Object.entries(APPLIES)) {
        const input = field(name);
        // A field on a shared line sits in a .fieldBox whose parent also holds its errors and help.
        const box = input && (input.closest(".fieldBox")?.parentElement || input.closest(".form-row"));
        if (box) box.classList.toggle("wf-hidden", !applies(v) && !box.querySelector(".errorlist"));
      }
      const ref = field("approver_ref");
      if (ref) ref.setAttribute("list", REF_LIST[v.approver_type] || "");
      const escRef = field("escalate_to_ref");
      if (escRef) escRef.setAttribute("list", REF_LIST[v.escalate_to] || "");
    };
    row.addEventListener("change", refresh);
    row.addEventListener("input", refresh);
    refresh();
    const condition = field("condition");
    if (condition && !row.querySelector(".wf-field-picker")) {
      const picker = el("select", {class: "wf-field-picker", title: "Insert a form field"});
      const fill = () => {
        picker.replaceChildren(el("option", {value: ""}, "insert field…"));
        getFields().filter((f) => f.key).forEach((f) => picker.append(el("option", {value: f.key}, f.label + " (" + f.key + ")")));
        ["requester.department", "requester.title"].forEach((k) => picker.append(el("option", {value: k}, k)));
      };
      picker.addEventListener("focus", fill);
      picker.addEventListener("mousedown", fill);
      picker.addEventListener("change", () => {
        const at = condition.selectionStart ?? condition.value.length;
        condition.value = condition.value.slice(0, at) + picker.value + condition.value.slice(at);
        picker.value = "";
        condition.focus();
      });
      fill();
      condition.after(picker);
    }
    if (row.querySelector(".errorlist")) row.querySelectorAll("details").forEach((d) => { d.open = true; });
  }

  function datalist(id, items) {
    let list = document.getElementById(id);
    if (!list) { list = el("datalist", {id}); document.body.append(list); }
    list.replaceChildren(...items.map((i) => el("option", {value: i.value}, i.label || i.value)));
  }

  function openStep(hash) {
    const row = document.querySelector(hash);
    if (!row) return;
    row.querySelectorAll("details").forEach((d) => { d.open = true; });
    row.classList.add("wf-flash");
    setTimeout(() => row.classList.remove("wf-flash"), 1600);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const data = JSON.parse(document.getElementById("wf-builder")?.textContent || "{}");
    const choices = data.choices || {users: [], roles: [], departments: []};
    datalist("wf-users", choices.users);
    datalist("wf-roles", choices.roles);
    datalist("wf-departments", choices.departments || []);
    let current = fieldsFrom(data.schema || {});
    const onFields = (fields) => {
      current = fields;
      datalist("wf-person-fields", fields.filter((f) => f.key && ["person", "email"].includes(f.type)).map((f) => ({value: f.key, label: f.label})));
      renderPreview(fields, choices);
    };
    const raw = document.querySelector(".wf-schema-raw");
    if (raw && document.getElementById("wf-designer")) designer(raw, choices, onFields);
    else onFields(current);

    document.querySelectorAll("#steps-group .inline-related").forEach((row) => stepRow(row, () => current));
    document.addEventListener("formset:added", (e) => stepRow(e.target, () => current));

    document.querySelectorAll("a.wf-step-link").forEach((a) => a.addEventListener("click", () => openStep(a.getAttribute("href"))));
    if (location.hash.startsWith("#steps-")) openStep(location.hash);

    const run = document.getElementById("wf-sim-run");
    if (run) run.addEventListener("click", async () => {
      const out = document.getElementById("wf-sim-output");
      const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
      const response = await fetch(data.simulate_url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": token},
        body: JSON.stringify({requester: document.getElementById("wf-sim-requester").value, data: sampleData()}),
      });
      const text = await response.text();
      if (response.ok) out.innerHTML = text; // server-rendered, every value escaped there
      else out.replaceChildren(el("p", {class: "errornote"}, text));
      out.dataset.done = String(Date.now());
    });
  });
})();
