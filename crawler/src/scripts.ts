/**
 * Lua scripts: each runs atomically in Redis, which is what makes the crawl exact under redelivery.
 * Times come from Redis' own clock (TIME) so that workers with skewed clocks agree.
 */
import { IMAGE_TASK_DEPTH } from './keys.js';

/** ARGV entries per result of COMPLETE_IMAGES (messageId, url, recordJson, outcome, sha256, fileJson). */
export const IMAGE_RESULT_FIELDS = 6;

/** Pages remembered per image URL (fetchImages jobs): a logo is on every page of a site; its listing names the first ones. */
export const MAX_PAGES_PER_IMAGE = 50;

const NOW = `local __t = redis.call('TIME') local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)`;

/**
 * KEYS: job, seen, tasks. ARGV: id, maxDepth, maxPages, scope, seedsJson, ttlSeconds, optionsJson, url...
 * Creates the job hash and enqueues the seeds at depth 0; returns the number of seeds queued (-1 if the id exists).
 * `fetchImages` is copied out of the options so the completion script reads one field, not the JSON.
 * "seen" maps every admitted URL to the shortest link distance known for it.
 */
export const CREATE_JOB = `${NOW}
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local maxPages = tonumber(ARGV[3])
local n = 0
for i = 8, #ARGV do
  if n < maxPages and redis.call('HSETNX', KEYS[2], ARGV[i], 0) == 1 then
    n = n + 1
    redis.call('XADD', KEYS[3], '*', 'j', ARGV[1], 'u', ARGV[i], 'd', '0', 'a', '1')
  end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'running', 'createdAt', now, 'updatedAt', now,
  'maxDepth', ARGV[2], 'maxPages', ARGV[3], 'scope', ARGV[4], 'seeds', ARGV[5], 'options', ARGV[7],
  'queued', n, 'pending', n, 'fetched', 0, 'failed', 0, 'robots', 0, 'blocked', 0, 'cancelled', 0, 'images', 0,
  'dataImages', 0, 'capped', 0, 'ttl', ARGV[6])
if cjson.decode(ARGV[7]).fetchImages == true then redis.call('HSET', KEYS[1], 'fetchImages', 1) end
return n`;

/**
 * The one step that records a page's result. KEYS: job, seen, done, pages, imageSet, images, tasks, takeovers,
 * imagePages, imageFetches, imageFiles, imageBlobs.
 * ARGV: group, messageId, jobId, url, outcome (a count field), pageJson, imagePage, taskDepth,
 *       expandable (1: an HTML page, whose links count), expanded (1: its links are in this call),
 *       dataImages, capped (1: a link or image cap applied), nImages, (imageUrl, alt, kind) x nImages,
 *       nChildren, (url, depth, robotsDisallowed 0|1) x nChildren.
 * Image records are built here from (url, page, alt, kind): sending each URL once keeps the command small.
 * Marking the URL done, counting it, storing new images, admitting children (dedupe + max pages + pending)
 * and acknowledging the message happen together, so a crash anywhere leaves either nothing or everything;
 * a redelivered message finds its URL in "done" and is only acknowledged.
 *
 * Depth is the shortest link distance from a start URL, whatever the order of responses: "seen" keeps the
 * shortest distance known for every URL and it only goes down. A page's effective depth is the smaller of its
 * task's and the one in "seen"; its children are admitted at that depth + 1. When a shorter path reaches a page
 * that was already expanded at a greater depth (or fetched at maxDepth, so not expanded), it is queued again at
 * the shorter depth: that revisit is not counted again, it only admits the children at their right depth.
 * "done" maps a URL to the depth it was expanded at ("d|i", i: its record's index), "n|i" for a page fetched
 * but not expanded, "x|i" for a final outcome (failed, robots, not HTML) that no path changes.
 * With fetchImages, each new image URL is queued once as an image task (IMAGE_TASK_DEPTH, counted in
 * pending like a page, so the job is done when its images are), and the pages an image is found on are kept
 * (imagePages: url -> JSON list, at most MAX_PAGES_PER_IMAGE).
 * Returns 1 when recorded, 2 for a revisit, 0 for a duplicate, -1 when the job no longer exists.
 */
export const COMPLETE_PAGE = `${NOW}
local function ack()
  if ARGV[2] ~= '' then
    redis.call('XACK', KEYS[7], ARGV[1], ARGV[2])
    redis.call('XDEL', KEYS[7], ARGV[2])
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then ack() return -1 end
local status = redis.call('HGET', KEYS[1], 'status')
local maxDepth = tonumber(redis.call('HGET', KEYS[1], 'maxDepth'))
local url = ARGV[4]
local eff = tonumber(ARGV[8])
local best = tonumber(redis.call('HGET', KEYS[2], url) or '')
if best and best < eff then eff = best end
local expandable = ARGV[9] == '1'
local expanded = ARGV[10] == '1'
local prev = redis.call('HGET', KEYS[3], url)
local index = -1
if prev then
  local state, at = string.match(prev, '^([^|]*)|(-?%d+)$')
  index = tonumber(at)
  if state == 'x' then ack() return 0 end
  if state == 'n' and (eff >= maxDepth or not expanded) then ack() return 0 end
  if state ~= 'n' and tonumber(state) <= eff then ack() return 0 end
end
local pending = 0
if not prev then
  redis.call('HINCRBY', KEYS[1], ARGV[5], 1)
  if ARGV[11] ~= '0' then redis.call('HINCRBY', KEYS[1], 'dataImages', tonumber(ARGV[11])) end
  if ARGV[12] == '1' then redis.call('HINCRBY', KEYS[1], 'capped', 1) end
end
if ARGV[6] ~= '' then
  local record = cjson.decode(ARGV[6])
  record.depth = eff
  if index >= 0 then redis.call('LSET', KEYS[4], index, cjson.encode(record))
  else index = redis.call('RPUSH', KEYS[4], cjson.encode(record)) - 1 end
end
local state = 'x'
if expandable then
  if expanded then state = tostring(eff) else state = 'n' end
end
redis.call('HSET', KEYS[3], url, state .. '|' .. index)
local i = 13
local nImages = tonumber(ARGV[i])
i = i + 1
local newImages = 0
local fetchImages = redis.call('HGET', KEYS[1], 'fetchImages') == '1'
for _ = 1, nImages do
  if redis.call('SADD', KEYS[5], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[6], cjson.encode({ url = ARGV[i], page = ARGV[7], alt = ARGV[i + 1], kind = ARGV[i + 2] }))
    newImages = newImages + 1
    if fetchImages and status == 'running' then
      pending = pending + 1
      redis.call('XADD', KEYS[7], '*', 'j', ARGV[3], 'u', ARGV[i], 'd', '${IMAGE_TASK_DEPTH}', 'a', '1')
    end
  end
  if fetchImages then
    local known = redis.call('HGET', KEYS[9], ARGV[i])
    local pages = known and cjson.decode(known) or {}
    if #pages < ${MAX_PAGES_PER_IMAGE} then
      local listed = false
      for _, p in ipairs(pages) do if p == ARGV[7] then listed = true break end end
      if not listed then
        table.insert(pages, ARGV[7])
        redis.call('HSET', KEYS[9], ARGV[i], cjson.encode(pages))
      end
    end
  end
  i = i + 3
end
if newImages > 0 then redis.call('HINCRBY', KEYS[1], 'images', newImages) end
local nChildren = tonumber(ARGV[i])
i = i + 1
if status == 'running' then
  local maxPages = tonumber(redis.call('HGET', KEYS[1], 'maxPages'))
  local queued = tonumber(redis.call('HGET', KEYS[1], 'queued'))
  local admitted = 0
  for _ = 1, nChildren do
    local u, d, disallowed = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    i = i + 3
    if d > eff + 1 then d = eff + 1 end
    local known = redis.call('HGET', KEYS[2], u)
    if not known then
      if disallowed == '1' then
        redis.call('HSET', KEYS[2], u, d)
        redis.call('HINCRBY', KEYS[1], 'robots', 1)
      elseif queued < maxPages then
        redis.call('HSET', KEYS[2], u, d)
        queued = queued + 1
        admitted = admitted + 1
        pending = pending + 1
        redis.call('XADD', KEYS[7], '*', 'j', ARGV[3], 'u', u, 'd', d, 'a', '1')
      else
        redis.call('HSET', KEYS[1], 'maxPagesReached', 1)
      end
    elseif tonumber(known) > d then
      -- a shorter path to a page already admitted: its depth goes down; if it was already expanded deeper
      -- (or not at all), it is revisited at this depth. One still queued or in flight reads it from "seen".
      redis.call('HSET', KEYS[2], u, d)
      local done = redis.call('HGET', KEYS[3], u)
      if done then
        local s, at = string.match(done, '^([^|]*)|(-?%d+)$')
        if d < maxDepth and (s == 'n' or (s ~= 'x' and tonumber(s) > d)) then
          pending = pending + 1
          redis.call('XADD', KEYS[7], '*', 'j', ARGV[3], 'u', u, 'd', d, 'a', '1')
        elseif tonumber(at) >= 0 then
          -- nothing to revisit (a final outcome): its record just takes the shorter depth
          local record = cjson.decode(redis.call('LINDEX', KEYS[4], tonumber(at)))
          record.depth = d
          redis.call('LSET', KEYS[4], tonumber(at), cjson.encode(record))
        end
      end
    end
  end
  if admitted > 0 then redis.call('HSET', KEYS[1], 'queued', queued) end
  -- this page's depth went down while it was in flight, below where its links count: it is revisited
  if expandable and not expanded and eff < maxDepth then
    pending = pending + 1
    redis.call('XADD', KEYS[7], '*', 'j', ARGV[3], 'u', url, 'd', eff, 'a', '1')
  end
end
pending = redis.call('HINCRBY', KEYS[1], 'pending', pending - 1)
redis.call('HSET', KEYS[1], 'updatedAt', now)
if pending <= 0 and status == 'running' then redis.call('HSET', KEYS[1], 'status', 'done', 'finishedAt', now) end
if pending <= 0 then
  -- Nothing of this job is in flight any more: its data is kept for the job's retention time, then dropped.
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
  if ttl and ttl > 0 then
    for k = 1, 6 do redis.call('EXPIRE', KEYS[k], ttl) end
    for k = 8, 12 do redis.call('EXPIRE', KEYS[k], ttl) end
  end
end
ack()
if prev then return 2 end
return 1`;

/**
 * Records what downloading image URLs of one job gave: every result a worker had ready in the same turn of its
 * event loop, in one call (one command to send and parse, the job's keys named once, not once per image).
 * KEYS: job, imageFetches, imageFiles, tasks, then the job's other keys (they expire together when nothing is in
 * flight). ARGV: group, then per result (IMAGE_RESULT_FIELDS of them): messageId, url, recordJson, outcome,
 * sha256, fileJson (type, bytes, width, height, location).
 * Each result is taken as if alone, in order: a stored content is listed once under its hash with every URL it
 * came from (imageFiles: sha256 -> JSON); a URL already in imageFetches (a redelivered task, or the same URL twice
 * in the batch) is only acknowledged. The whole batch is one atomic step, so a worker killed while sending it
 * leaves every one of its messages unacknowledged (taken over later) or every one recorded.
 * Returns per result: 1 when recorded, 0 for a duplicate, -1 when the job no longer exists.
 */
export const COMPLETE_IMAGES = `${NOW}
local function ack(messageId)
  if messageId ~= '' then
    redis.call('XACK', KEYS[4], ARGV[1], messageId)
    redis.call('XDEL', KEYS[4], messageId)
  end
end
local answers = {}
if redis.call('EXISTS', KEYS[1]) == 0 then
  for i = 2, #ARGV, ${IMAGE_RESULT_FIELDS} do
    ack(ARGV[i])
    table.insert(answers, -1)
  end
  return answers
end
local recorded, stored, newFiles = 0, 0, 0
for i = 2, #ARGV, ${IMAGE_RESULT_FIELDS} do
  local messageId, url, record, outcome, sha256, fileJson = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  if redis.call('HSETNX', KEYS[2], url, record) == 0 then
    table.insert(answers, 0)
  else
    recorded = recorded + 1
    if outcome == 'stored' then
      stored = stored + 1
      local known = redis.call('HGET', KEYS[3], sha256)
      local file
      if known then
        file = cjson.decode(known)
      else
        file = cjson.decode(fileJson)
        file.urls = {}
        newFiles = newFiles + 1
      end
      table.insert(file.urls, url)
      redis.call('HSET', KEYS[3], sha256, cjson.encode(file))
    end
    table.insert(answers, 1)
  end
  ack(messageId)
end
if recorded == 0 then return answers end
if stored > 0 then redis.call('HINCRBY', KEYS[1], 'imagesStored', stored) end
if newFiles > 0 then redis.call('HINCRBY', KEYS[1], 'imageFiles', newFiles) end
if recorded > stored then redis.call('HINCRBY', KEYS[1], 'imagesNotStored', recorded - stored) end
local status = redis.call('HGET', KEYS[1], 'status')
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -recorded)
redis.call('HSET', KEYS[1], 'updatedAt', now)
if pending <= 0 and status == 'running' then redis.call('HSET', KEYS[1], 'status', 'done', 'finishedAt', now) end
if pending <= 0 then
  local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
  if ttl and ttl > 0 then
    for k = 1, #KEYS do
      if k ~= 4 then redis.call('EXPIRE', KEYS[k], ttl) end
    end
  end
end
return answers`;

/**
 * A task of a job that is gone or being deleted is not queued again (DELAY_TASK, RELEASE_TASK): the delete may
 * have taken the job's tasks off the queues already, and one put back after that would outlive it.
 */
const TASK_OF_LIVE_JOB = `local __status = redis.call('HGET', KEYS[#KEYS], 'status')
local live = __status and __status ~= 'deleting'`;

/**
 * Puts a task aside until later (retry backoff, or a host's politeness slot) and acknowledges its message.
 * KEYS: tasks, delayed, the task's job. ARGV: group, messageId, delayMs, taskJson. Returns 1, or 0 when the task
 * was only acknowledged (its job is gone or being deleted).
 */
export const DELAY_TASK = `${NOW}
${TASK_OF_LIVE_JOB}
if live then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4]) end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
return live and 1 or 0`;

/** Moves due delayed tasks onto the stream. KEYS: delayed, tasks. ARGV: limit. Returns how many moved. */
export const PROMOTE_DUE = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local t = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'j', t.j, 'u', t.u, 'd', tostring(t.d), 'a', tostring(t.a))
  redis.call('ZREM', KEYS[1], member)
end
return #due`;

/**
 * Hands a held message back to the queue (graceful shutdown): a fresh copy for any worker, then ack.
 * KEYS: tasks, the task's job. ARGV: group, messageId, jobId, url, depth, attempt. Returns 1, or 0 when the
 * message was only acknowledged (its job is gone or being deleted).
 */
export const RELEASE_TASK = `
${TASK_OF_LIVE_JOB}
if live then redis.call('XADD', KEYS[1], '*', 'j', ARGV[3], 'u', ARGV[4], 'd', ARGV[5], 'a', ARGV[6]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return live and 1 or 0`;

/**
 * Per-host politeness shared by all workers: hands out request slots at least intervalMs apart, or the host's
 * back-off penalty apart when that is larger (PENALISE_HOST).
 * KEYS: host slot, host penalty. ARGV: intervalMs, maxWaitMs. Returns {reserved 0|1, waitMs, penaltyMs}; nothing
 * is reserved when the wait would exceed maxWaitMs (the caller delays the task instead of holding a slot it
 * cannot use).
 */
export const HOST_SLOT = `${NOW}
local penalty = tonumber(redis.call('GET', KEYS[2]) or '0')
local interval = math.max(tonumber(ARGV[1]), penalty)
local nextFree = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, nextFree)
local wait = slot - now
if wait > tonumber(ARGV[2]) then return {0, wait, penalty} end
if interval > 0 then redis.call('SET', KEYS[1], slot + interval, 'PX', wait + interval + 60000) end
return {1, wait, penalty}`;

/**
 * A host answered 429 or 503. Its penalty (the least gap between two requests to it, across all workers) at
 * least doubles, to no less than ARGV[2] and the Retry-After, and no more than ARGV[3]; no request goes to it
 * before the Retry-After (or the penalty) has passed, capped at ARGV[3]. A penalty not renewed for an hour is
 * forgotten. KEYS: the host's penalty, the host's slot. ARGV: retryAfterMs, baseMs, maxMs. Returns the penalty.
 */
export const PENALISE_HOST = `${NOW}
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local retryAfter = tonumber(ARGV[1])
local maxMs = tonumber(ARGV[3])
local penalty = math.min(maxMs, math.max(old * 2, tonumber(ARGV[2]), retryAfter))
redis.call('SET', KEYS[1], penalty, 'PX', 3600000)
local quiet = math.min(maxMs, math.max(retryAfter, penalty))
local nextFree = tonumber(redis.call('GET', KEYS[2]) or '0')
if now + quiet > nextFree then redis.call('SET', KEYS[2], now + quiet, 'PX', quiet + 60000) end
return penalty`;

/**
 * A penalised host answered normally: its penalty shrinks by a fifth, and goes once below ARGV[1] (the host
 * has recovered). KEYS: the host's penalty. ARGV: baseMs. Returns the penalty left (0: none).
 */
export const EASE_HOST = `
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
local eased = math.floor(old * 0.8)
if eased < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], eased, 'PX', 3600000)
return eased`;

/**
 * Per-host concurrency: a request to a host takes a lease in the host's in-flight set when fewer than ARGV[1]
 * are held there, across all workers. Leases expire (ARGV[3] ms), so a worker killed mid-request does not hold
 * its place for ever. KEYS: the host's in-flight set. ARGV: cap, lease id, leaseMs. Returns 1 (entered) or 0.
 */
export const HOST_ENTER = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 60000)
return 1`;

/** Cancels a running job. KEYS: job. Returns the previous status, or false when there is no such job. */
export const CANCEL_JOB = `${NOW}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'running' then redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updatedAt', now, 'finishedAt', now) end
return status`;

/**
 * Stores one origin's robots.txt answer in the shared cache, bounded in entries and bytes: entries expire after
 * ttlSeconds, and the oldest are evicted while there are more than maxEntries or more than maxBytes in all.
 * KEYS: entry, index (zset: entry key -> stored at), sizes (hash: entry key -> bytes), total bytes.
 * ARGV: value, ttlSeconds, maxEntries, maxBytes. Returns how many entries were evicted.
 */
export const STORE_ROBOTS = `${NOW}
local ttl = tonumber(ARGV[2])
local function forget(k)
  local s = tonumber(redis.call('HGET', KEYS[3], k) or '0')
  redis.call('HDEL', KEYS[3], k)
  redis.call('ZREM', KEYS[2], k)
  return redis.call('DECRBY', KEYS[4], s)
end
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000)) do
  forget(k)
  redis.call('DEL', k)
end
forget(KEYS[1])
local size = string.len(ARGV[1])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('HSET', KEYS[3], KEYS[1], size)
local total = redis.call('INCRBY', KEYS[4], size)
local evicted = 0
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[3]) or total > tonumber(ARGV[4]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 then break end
  total = forget(oldest[1])
  redis.call('DEL', oldest[1])
  evicted = evicted + 1
end
return evicted`;

/**
 * Keeps one content of a job in the image store `redis` (image-store.ts) unless the job's budget has no room.
 * KEYS: the job's blobs hash, the job. ARGV: sha256, bytes, maxBytes, the total's field name.
 * Returns 1 when written, 0 when the job already had it (or is gone, or being deleted: a late redelivery must not
 * leave a hash behind that nothing expires), -(bytes used + 1) when it would not fit.
 */
export const STORE_BLOB = `
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HGET', KEYS[2], 'status') == 'deleting' then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '0')
if used + #ARGV[2] > tonumber(ARGV[3]) then return -(used + 1) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[4], #ARGV[2])
return 1`;

/**
 * Deleting a job kept in the image store `redis`: its contents (the blobs hash) go in one step, counted by the
 * delete that removes them. KEYS: the job's blobs hash. ARGV: the total's field name. Returns how many contents
 * were removed: 0 for a second delete of the same job that comes after (they are counted once, whatever the
 * interleaving of the two).
 */
export const REMOVE_JOB_BLOBS = `
local fields = redis.call('HLEN', KEYS[1])
if fields == 0 then return 0 end
local contents = fields - redis.call('HEXISTS', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
return contents`;

/**
 * Deleting a job kept in the image store \`swift\`: each object a delete found under the job is claimed before it is
 * removed, and counted by the delete that claims it. Swift's answers cannot count: two DELETEs of one object that
 * arrive together may both be answered 204, and an object one delete removed is not in the listing of a second,
 * which may then finish (the job's keys gone) before the first has counted it. Claimed first, an object is either
 * counted by the delete that removes it, or still in Swift when a second delete lists it, and claimed there.
 * KEYS: job, the job's removed contents. ARGV: the object's name. Returns 1 when claimed here; 0 when claimed
 * already, or when the job's delete has finished (its keys are gone).
 */
export const CLAIM_REMOVAL = `
if redis.call('HGET', KEYS[1], 'status') ~= 'deleting' then return 0 end
return redis.call('SADD', KEYS[2], ARGV[1])`;

/**
 * A place in a job's budget for a content kept outside Redis (the `swift` store): KEYS[1] the job's blobs hash,
 * KEYS[2] the job; ARGV: sha256, bytes, the job's max bytes, the total's field. The content's field holds its size.
 * 0: the job is gone (or being deleted) or the content already has its place; 1: reserved; -(used+1): no room.
 */
export const RESERVE_BLOB = `
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('HGET', KEYS[2], 'status') == 'deleting' then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local used = tonumber(redis.call('HGET', KEYS[1], ARGV[4]) or '0')
local size = tonumber(ARGV[2])
if used + size > tonumber(ARGV[3]) then return -(used + 1) end
redis.call('HSET', KEYS[1], ARGV[1], size)
redis.call('HINCRBY', KEYS[1], ARGV[4], size)
return 1`;

/**
 * The `swift` store's settle (image-store.ts): the one worker that sets an ended job's objects to expire with its
 * record takes this claim, a lease (ARGV[3] ms, renewed while it works: EXTEND_STORE_EXPIRY) that a settle cut
 * short (Swift failing, the worker killed) gives back or lets lapse, so that the job is settled again.
 * KEYS: job, the job's claim (storeExpiry), the jobs still to settle (storeSettleDue). ARGV: job id, the lease's
 * token, leaseMs, how much later a running job is looked at again (ms).
 * Returns the record's PTTL (ms) when claimed (the job is then due again at the lease's end, for whoever finds it
 * lapsed), 0 when not: the job has not ended (it is due again later), it is kept for ever (no expiry to set) or
 * gone or being deleted (nothing of it is kept: it leaves the due set), another worker has the lease, or it is
 * settled. One script, so a delete that removes the job's keys cannot come between the look at the job and the
 * claim (a claim made after it would outlive the job).
 */
export const CLAIM_STORE_EXPIRY = `${NOW}
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deleting' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then
  -- (written when the job's place is missing or has come due, not at every one of its completions)
  if tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0') > 0 then
    local due = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]) or '0')
    if due <= now then redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[1]) end
  else redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 0
end
if not redis.call('SET', KEYS[2], ARGV[2], 'PX', math.min(left, tonumber(ARGV[3])), 'NX') then
  if redis.call('GET', KEYS[2]) == 'settled' then redis.call('ZREM', KEYS[3], ARGV[1]) end
  return 0
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return left`;

/**
 * A settle still holding its lease (CLAIM_STORE_EXPIRY) keeps it another ARGV[3] ms (never past the job's record),
 * and the job's place in the due set moves with it. KEYS: job, claim, due set. ARGV: job id, token, leaseMs.
 * Returns 1, or 0 when the lease is no longer this settle's (it lapsed and another worker took the job over).
 */
export const EXTEND_STORE_EXPIRY = `${NOW}
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left <= 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.min(left, tonumber(ARGV[3])))
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1`;

/**
 * The end of a settle that held its lease. KEYS: job, claim, due set. ARGV: job id, token, 'settled' or the ms
 * after which a failed settle is tried again. Settled: the claim becomes 'settled' until the record expires (no
 * worker settles the job again) and the job leaves the due set. Failed: the lease is given back and the job is due
 * again then. Returns 1, or 0 when the lease was no longer this settle's (the worker that took it over ends it).
 */
export const END_STORE_EXPIRY = `${NOW}
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
local left = redis.call('PTTL', KEYS[1])
if not status or status == 'deleting' or left <= 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
if ARGV[3] == 'settled' then
  redis.call('SET', KEYS[2], 'settled', 'PX', left)
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('DEL', KEYS[2])
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
end
return 1`;

/** Gives a reservation back (its write to the store failed): KEYS[1] the blobs hash; ARGV: sha256, the total's field. */
export const RELEASE_BLOB = `
local size = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then redis.call('HINCRBY', KEYS[1], ARGV[2], -size) end
return size`;


/**
 * The first step of deleting a job (job-deletion.ts). KEYS: job. Returns false when there is no such job,
 * 'running' for a running job (refused: it is cancelled first), else marks it 'deleting' and returns 'deleting'.
 * From the mark on, nothing more is stored or queued for the job (STORE_BLOB, RESERVE_BLOB, HOLD_BLOB, KEEP_WITH_JOB,
 * DELAY_TASK and RELEASE_TASK refuse), its tasks complete as cancelled, and a delete cut short is taken up again by
 * the next one.
 */
export const BEGIN_DELETE = `${NOW}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
if status == 'running' then return 'running' end
redis.call('HSET', KEYS[1], 'status', 'deleting', 'updatedAt', now)
return 'deleting'`;

/**
 * The `directory` store, shared by all jobs: a job takes hold of a content before its file is written.
 * KEYS: job, the job's stored locations, the content's holders, the content's removal mark.
 * ARGV: job id, location, extra seconds its record outlives the job.
 * Returns 1 (held, by this job alone: the caller looks for a file nobody held, KEEP_UNHELD_BLOB), 2 (held, with
 * others), 0 (the job is gone or being deleted: nothing to keep), -1 (the content is being removed by a delete that
 * let go of its last holder: ask again in a moment).
 */
export const HOLD_BLOB = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deleting' then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local first = redis.call('SADD', KEYS[3], ARGV[1]) == 1 and redis.call('SCARD', KEYS[3]) == 1
redis.call('SADD', KEYS[2], ARGV[2])
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
if ttl and ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl + tonumber(ARGV[3])) end
if first then return 1 end
return 2`;

/**
 * The `directory` store: a content's first holder found its file there already. Nobody held it, so it predates
 * this bookkeeping (or a delete cut short left it): it gets the holder '*', which no delete removes. Looked for
 * only once held, so that no removal comes between the look and this (a file seen just before another job's
 * delete removed it is not taken for an old one). KEYS: the content's holders. ARGV: job id. Only while that job
 * is its one holder: a file another job holds is that job's write.
 */
export const KEEP_UNHELD_BLOB = `
if redis.call('SCARD', KEYS[1]) == 1 and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then redis.call('SADD', KEYS[1], '*') end
return 1`;

/**
 * A deleted job lets go of a content in the \`directory\` store. KEYS: the content's holders, its removal mark.
 * ARGV: job id, the job keys' prefix (<prefix>job:), a token, the mark's lifetime (ms).
 * Holders that are no job any more (expired, or being deleted) are dropped with it. Returns 1 when nobody holds
 * the content now: the caller removes the file, then clears the mark (END_BLOB_REMOVAL); 0 when it stays; -1 when
 * the job no longer held it and another delete is removing it now (a second delete of the same job, or one taking
 * up a delete cut short): the caller asks again once that removal has ended. Taking the mark over instead let two
 * deletes both remove the file and both count it, and the later removal could take the file of a job that wrote
 * it again in between.
 */
export const LET_GO_BLOB = `
local held = redis.call('SREM', KEYS[1], ARGV[1]) == 1
for _, holder in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if holder ~= '*' then
    local status = redis.call('HGET', ARGV[2] .. holder, 'status')
    if not status or status == 'deleting' then redis.call('SREM', KEYS[1], holder) end
  end
end
if redis.call('SCARD', KEYS[1]) > 0 then return 0 end
if not held and redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', tonumber(ARGV[4]))
return 1`;

/** Clears a content's removal mark if it is still ours. KEYS: the mark. ARGV: the token. */
export const END_BLOB_REMOVAL = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * Removes a deleted job's tasks from the shared stream, one batch of entries at a time (Redis is not held for long).
 * KEYS: tasks. ARGV: job id, the first entry id to read (exclusive after the first batch: '(' + id), batch size.
 * Returns {the last entry id read, or '' at the end; how many were removed}. An entry a worker holds is removed
 * too: the worker's completion finds no job and acknowledges it, and XAUTOCLAIM drops a removed entry.
 */
export const PURGE_JOB_TASKS = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[2], '+', 'COUNT', tonumber(ARGV[3]))
local removed = 0
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'j' then
      if fields[i + 1] == ARGV[1] then
        redis.call('XDEL', KEYS[1], entry[1])
        removed = removed + 1
      end
      break
    end
  end
end
if #entries < tonumber(ARGV[3]) then return {'', removed} end
return {entries[#entries][1], removed}`;

/**
 * Counts one more takeover of a URL's task from a silent worker (the poison-task guard). KEYS: job, the job's
 * takeovers. ARGV: url. Returns the count, or 0 when the job is gone or being deleted: nothing is counted for it
 * (a count made after its delete would be a key nothing removes). The counts expire with an ended job's record.
 */
export const COUNT_TAKEOVER = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deleting' then return 0 end
local count = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local left = redis.call('PTTL', KEYS[1])
if left > 0 then redis.call('PEXPIRE', KEYS[2], left) end
return count`;

/**
 * One write to a key of a job's that its completion scripts do not expire (captures, robots decisions), only while
 * the job exists and is not being deleted (a worker finishing late must not bring back what a delete removed).
 * KEYS: job, the key. ARGV: 'rpush' | 'hsetnx', extra seconds the key outlives the job, then the command's values.
 */
export const KEEP_WITH_JOB = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deleting' then return 0 end
if ARGV[1] == 'rpush' then redis.call('RPUSH', KEYS[2], ARGV[3])
else redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4]) end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl') or '0')
if ttl and ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl + tonumber(ARGV[2])) end
return 1`;
