-- wrk script for the bare endpoint: the same POST shape as a sell, so both sides pay the same client cost.
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"request_id":"x","code":"x","action":"sell","scanned_at":"x"}'
end
