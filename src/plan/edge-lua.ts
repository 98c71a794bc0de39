/**
 * The edge's routing code, run by nginx's Lua module (Debian's libnginx-mod-http-lua) inside the edge's
 * nginx: it is rendered into nginx.conf as the text of an init_by_lua_block, so the configuration and the code
 * it runs are one file, swapped and checked together.
 *
 * DESIGN — how a switch reaches the edge without a reload:
 * - The routing (domain, live, canary + weight, installed versions and their upstreams) lives in one
 *   lua_shared_dict that every worker reads on every request. Changing it changes where the next request goes,
 *   in every worker at once; nothing is reloaded, no connection is closed, so a client that never retries
 *   sees nothing but the new answer.
 * - depl writes the routing table (edge-routing.ts) atomically (rename) to a file in the edge's directory,
 *   which is bind-mounted from the manager into the edge container. That file is the edge's durable copy of
 *   the recorded state: nginx reads it in init_by_lua, in the master, BEFORE it opens its listening sockets
 *   to workers, so an edge that restarts serves the recorded routing from its first connection on.
 * - A running edge learns a change two ways: worker 0 polls the file every pollSeconds (a fallback, e.g. for
 *   an edge restarted while depl was away), and depl's confirmation request makes the edge read it at once:
 *   GET /_depl/config with Host depl-edge-probe.invalid syncs from the file, then answers
 *   "<config generation> <routing generation>". depl repeats that request until the routing generation is
 *   the one it wrote: from then on every new request is routed by it (the dict is shared, there are no old
 *   workers to drain). The probe only ever re-reads the file depl wrote, so exposing it changes nothing an
 *   outsider could steer; reads are serialised by a short lock in the dict, so an older read never
 *   overwrites a newer one.
 * - Each worker keeps the parsed tables of the change it last saw; a request costs one dict lookup.
 * - The cluster's edge (docs/ARCHITECTURE.md) routes several apps: each app's table is its own file, written under
 *   its own lock, and the app list (edge-apps.ts) says which files to read and which domain each app claimed. A
 *   request's host picks the app (its domain, or one label under it), then the table routes as above; the probe
 *   reports the generation of the app it is asked for (?app=), so one app's change is confirmed, and torn, alone.
 * - A torn or invalid file is ignored (the last good routing stays) and logged once.
 * - Reloads remain for what nginx cannot take live (listen ports, certificates, this code): graceful.
 */
export const EDGE_LUA_MODULE = `
local M = {}
local dict = ngx.shared.depl_routing
local FORMAT = "depl-routing 1"
local APPS_FORMAT = "depl-edge-apps 1"
local settings = { file = nil, apps = nil, routes = nil, poll = 0.05, config = "" }
local cached_epoch, cached = nil, nil
local last_bad = {}

local function parse(text)
  local r = { versions = {} }
  local first, ended = true, false
  for line in text:gmatch("[^\\n]+") do
    if first then
      if line ~= FORMAT then return nil, "not a routing table (" .. line:sub(1, 40) .. ")" end
      first = false
    elseif line == "end" then
      ended = true
    else
      local key, a, b = line:match("^(%a+) (%S+) ?(%S*)$")
      if key == "generation" then r.generation = a
      elseif key == "domain" then r.domain = a
      elseif key == "live" then r.live = a
      elseif key == "canary" then r.canary = a; r.weight = tonumber(b)
      elseif key == "version" and b:match("^http://") then r.versions[a] = b
      else return nil, "unknown line: " .. line:sub(1, 80) end
    end
  end
  if not ended then return nil, "no end line (a torn write?)" end
  if not r.generation or not r.domain then return nil, "no generation or domain" end
  if r.live and not r.versions[r.live] then return nil, "live version is not listed" end
  if r.canary and (not r.versions[r.canary] or not r.weight) then return nil, "canary version is not listed" end
  r.threshold = r.canary and math.floor(r.weight * 100 + 0.5) or 0
  return r
end

-- The cluster edge's app list (src/plan/edge-apps.ts): app -> the domain it claimed, in listed order.
local function parse_apps(text)
  local apps, order = {}, {}
  local first, ended = true, false
  for line in text:gmatch("[^\\n]+") do
    if first then
      if line ~= APPS_FORMAT then return nil, "not an app list (" .. line:sub(1, 40) .. ")" end
      first = false
    elseif line == "end" then
      ended = true
    else
      local app, domain = line:match("^app (%S+) (%S+)$")
      if not app then return nil, "unknown line: " .. line:sub(1, 80) end
      apps[app] = domain
      order[#order + 1] = app
    end
  end
  if not ended then return nil, "no end line (a torn write?)" end
  return apps, order
end

local function read(path)
  local f = io.open(path, "rb")
  local text = f and f:read("*a")
  if f then f:close() end
  return text
end

local function complain(key, text, what, err)
  if text ~= last_bad[key] then
    last_bad[key] = text
    ngx.log(ngx.ERR, "depl: ignoring ", what, ": ", err)
  end
end

-- One app's table (the app "" of a one-app edge): published under its name when new and valid, and (on the
-- cluster's edge) at the domain its app claimed only; anything else keeps that app's last good table.
local function sync_table(app, path, claimed)
  local text = read(path)
  if not text or text == dict:get("text:" .. app) then return false end
  local r, err = parse(text)
  if r and claimed and r.domain ~= claimed then r, err = nil, "its domain " .. r.domain .. " is not the one app " .. app .. " claimed (" .. claimed .. ")" end
  if not r then complain(app, text, path, err); return false end
  dict:set("text:" .. app, text)
  dict:set("gen:" .. app, r.generation)
  return true
end

-- Reads the routing file(s) and publishes what is new and valid to the shared dict; "epoch" counts changes.
local function sync()
  -- one reader at a time: the later read sees the later files (replaced by rename), so it wins
  if not dict:add("sync-lock", true, 1) then return end
  local changed = false
  if settings.file then
    changed = sync_table("", settings.file, nil)
  elseif settings.apps then
    local text = read(settings.apps)
    local apps, order
    if text then
      apps, order = parse_apps(text)
      if not apps then complain("", text, settings.apps, order); text = nil end
    end
    if text then
      for _, app in ipairs(order) do
        if sync_table(app, settings.routes .. "/" .. app, apps[app]) then changed = true end
      end
      if text ~= dict:get("apps-text") then
        -- an app no longer listed is no longer routed; its table is dropped so a return starts afresh
        for app in (dict:get("apps") or ""):gmatch("%S+") do
          if not apps[app] then dict:delete("text:" .. app); dict:delete("gen:" .. app) end
        end
        dict:set("apps-text", text)
        dict:set("apps", table.concat(order, " "))
        changed = true
      end
    end
  end
  if changed then dict:incr("epoch", 1, 0) end
  dict:delete("sync-lock")
end

-- The parsed tables of the epoch this worker last saw, keyed by the domain each app serves.
local function current()
  local epoch = dict:get("epoch")
  if epoch == nil then return nil end
  if epoch ~= cached_epoch then
    local by_domain = {}
    local names = settings.file and { "" } or {}
    if not settings.file then for app in (dict:get("apps") or ""):gmatch("%S+") do names[#names + 1] = app end end
    for _, app in ipairs(names) do
      local r = parse(dict:get("text:" .. app) or "")
      if r then by_domain[r.domain] = r end
    end
    cached_epoch, cached = epoch, by_domain
  end
  return cached
end

-- init_by_lua (master, before any worker exists): the routing on disk is in the dict before traffic.
-- opts.file: one app's table (an app's own edge); opts.apps + opts.routes: the cluster's edge, every app listed.
function M.init(opts)
  settings.file, settings.apps, settings.routes = opts.file, opts.apps, opts.routes
  settings.poll, settings.config = opts.poll or settings.poll, opts.config or ""
  dict:delete("sync-lock")
  sync()
end

function M.init_worker()
  if ngx.worker.id() == 0 then
    ngx.timer.every(settings.poll, function(premature) if not premature then sync() end end)
  end
end

-- access phase of every proxied request: picks the app by the host, then its version, or answers 404.
function M.route()
  local tables = current()
  local host = ngx.var.host
  local r = tables and tables[host]
  local label
  if r then
    label = r.live
    if label and r.canary then
      -- sticky: the client's depl_client cookie decides its side; a client without one is keyed by address
      -- and user agent and is given that key as its cookie, so it keeps its side from then on (Secure over
      -- https, so a browser never sends it over plain http)
      local key = ngx.var.cookie_depl_client
      if key == nil or key == "" then
        key = ngx.md5((ngx.var.remote_addr or "") .. (ngx.var.http_user_agent or "")):sub(1, 16)
        local secure = ngx.var.https == "on" and "; Secure" or ""
        ngx.var.depl_set_cookie = "depl_client=" .. key .. "; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax" .. secure
      end
      if ngx.crc32_long(key) % 10000 < r.threshold then label = r.canary end
    end
  elseif tables then
    -- <version>.<domain>: one label, then a domain some app serves
    local dot = host:find(".", 1, true)
    r = dot and tables[host:sub(dot + 1)]
    if r then label = host:sub(1, dot - 1) end
  end
  local upstream = r and label and r.versions[label]
  if not upstream then return ngx.exit(404) end
  ngx.var.depl_version = label
  ngx.var.depl_upstream = upstream
end

-- The probe: syncs from the files, then reports what this edge runs and the generation it serves for the app
-- asked (?app=<name> on the cluster's edge; an app's own edge has one table).
function M.report()
  sync()
  local app = settings.file and "" or (ngx.var.arg_app or "")
  ngx.header.content_type = "text/plain"
  ngx.header.cache_control = "no-store"
  ngx.say(settings.config, " ", (app ~= "" or settings.file) and dict:get("gen:" .. app) or "none")
end

return M
`;
