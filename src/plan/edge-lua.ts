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
 * - Each worker keeps the parsed table of the generation it last saw; a request costs one dict lookup.
 * - A torn or invalid file is ignored (the last good routing stays) and logged once.
 * - Reloads remain for what nginx cannot take live (listen ports, certificates, this code): graceful.
 */
export const EDGE_LUA_MODULE = `
local M = {}
local dict = ngx.shared.depl_routing
local FORMAT = "depl-routing 1"
local settings = { file = nil, poll = 0.05, config = "" }
local cached_generation, cached = nil, nil
local last_bad = nil

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
  r.suffix = "." .. r.domain
  r.threshold = r.canary and math.floor(r.weight * 100 + 0.5) or 0
  return r
end

-- Reads the routing file and publishes it to the shared dict when it is new and valid.
local function sync()
  if not settings.file then return end
  -- one reader at a time: the later read sees the later file (replaced by rename), so it wins
  if not dict:add("sync-lock", true, 1) then return end
  local f = io.open(settings.file, "rb")
  local text = f and f:read("*a")
  if f then f:close() end
  if text and text ~= dict:get("text") then
    local r, err = parse(text)
    if r then
      dict:set("text", text)
      dict:set("generation", r.generation)
    elseif text ~= last_bad then
      last_bad = text
      ngx.log(ngx.ERR, "depl: ignoring ", settings.file, ": ", err)
    end
  end
  dict:delete("sync-lock")
end

local function current()
  local generation = dict:get("generation")
  if generation == nil then return nil end
  if generation ~= cached_generation then
    local r = parse(dict:get("text") or "")
    if not r then return cached end
    cached_generation, cached = generation, r
  end
  return cached
end

-- init_by_lua (master, before any worker exists): the routing on disk is in the dict before traffic.
function M.init(opts)
  settings.file, settings.poll, settings.config = opts.file, opts.poll or settings.poll, opts.config or ""
  dict:delete("sync-lock")
  sync()
end

function M.init_worker()
  if ngx.worker.id() == 0 then
    ngx.timer.every(settings.poll, function(premature) if not premature then sync() end end)
  end
end

-- access phase of every proxied request: picks the version, or answers 404.
function M.route()
  local r = current()
  local host = ngx.var.host
  local label
  if r == nil then
    return ngx.exit(404)
  elseif host == r.domain then
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
  elseif #host > #r.suffix and host:sub(-#r.suffix) == r.suffix then
    local candidate = host:sub(1, #host - #r.suffix)
    if not candidate:find(".", 1, true) then label = candidate end
  end
  local upstream = label and r.versions[label]
  if not upstream then return ngx.exit(404) end
  ngx.var.depl_version = label
  ngx.var.depl_upstream = upstream
end

-- The probe: syncs from the file, then reports what this edge runs and serves.
function M.report()
  sync()
  ngx.header.content_type = "text/plain"
  ngx.header.cache_control = "no-store"
  ngx.say(settings.config, " ", dict:get("generation") or "none")
end

return M
`;
