-- The common sell, set-based, on PostgreSQL: every item whose code is in the scanning store's stock, was shipped
-- to that store, matches the scanned GTIN and whose request was not answered before is sold in one statement's
-- transaction: the code, the stock level (guarded, never negative) and one ledger row per unit, the scan event,
-- the incentive credit, the sales for the rollups and the stored answer for replays.
--
-- Items it does not sell (duplicates, diversion, replays, anything unusual) are simply not in the result: the
-- caller runs them through the general path, which answers them one by one. If any stock level would go
-- negative the whole call fails (SQLSTATE SC001) and the caller runs every item through the general path.
--
-- Rows are locked in one order everywhere (codes by serial, as the caller sorts the input; stock levels by
-- location and SKU), so two calls racing on the same store cannot deadlock.
-- The answer is built here in the shape of `app.scans.services._answer`; `p_message` is the sold sentence as a
-- format() template (arguments: name, quantity, unit, on hand), made from `app.scans.messages.SOLD`.
CREATE OR REPLACE FUNCTION scan_sell_many(
    p_ords int[], p_user_ids bigint[], p_request_ids varchar[], p_serials varchar[], p_gtins varchar[],
    p_store_ids bigint[], p_ats timestamptz[], p_lats float8[], p_lngs float8[],
    p_now timestamptz, p_tz text, p_biz_step text, p_disposition text, p_message text)
RETURNS TABLE (out_ord int, out_answer text)
-- Generic plans: the statements are the same whatever the batch size, and re-planning each call costs more than
-- the work of a small batch.
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
    -- One entry per sold item, in input order.
    s_ord int[]; s_code bigint[]; s_sku bigint[]; s_order bigint[]; s_store bigint[]; s_user bigint[];
    s_request varchar[]; s_serial varchar[]; s_at timestamptz[]; s_lat float8[]; s_lng float8[];
    s_loc bigint[]; s_price bigint[];
    s_name varchar[]; s_unit varchar[]; s_gtin varchar[];
    -- One entry per (location, SKU), in key order.
    g_loc bigint[]; g_sku bigint[]; g_n int[]; g_after int[];
    -- The new events, by code.
    e_code bigint[]; e_id bigint[];
BEGIN
    WITH i AS (
        SELECT t.* FROM unnest(p_ords, p_user_ids, p_request_ids, p_serials, p_gtins, p_store_ids, p_ats, p_lats,
                               p_lngs) AS t(ord, user_id, request_id, serial, gtin, store_id, at, lat, lng)
        WHERE NOT EXISTS (SELECT 1 FROM scan_requests r
                          WHERE r.user_id = t.user_id AND r.request_id = t.request_id)
    ), u AS (
        UPDATE codes c SET state = 'sold', location_id = NULL, sold_at = i.at, updated_at = p_now
        FROM i
        WHERE c.serial = i.serial AND c.kind = 'unit' AND c.state IN ('in_store', 'returned')
          AND c.store_id = i.store_id AND c.destination_store_id = i.store_id
          AND (i.gtin IS NULL OR c.sku_id = (SELECT k.id FROM skus k WHERE k.gtin = i.gtin))
        RETURNING i.ord, c.id AS code_id, c.sku_id, c.order_id, i.store_id, i.user_id, i.request_id, i.serial,
                  i.at, i.lat, i.lng
    )
    SELECT array_agg(u.ord ORDER BY u.ord), array_agg(u.code_id ORDER BY u.ord), array_agg(u.sku_id ORDER BY u.ord),
           array_agg(u.order_id ORDER BY u.ord), array_agg(u.store_id ORDER BY u.ord),
           array_agg(u.user_id ORDER BY u.ord), array_agg(u.request_id ORDER BY u.ord),
           array_agg(u.serial ORDER BY u.ord), array_agg(u.at ORDER BY u.ord), array_agg(u.lat ORDER BY u.ord),
           array_agg(u.lng ORDER BY u.ord), array_agg(st.location_id ORDER BY u.ord),
           array_agg(coalesce(p.price_fen, 0) ORDER BY u.ord),
           array_agg(k.name ORDER BY u.ord), array_agg(k.unit ORDER BY u.ord), array_agg(k.gtin ORDER BY u.ord)
      INTO s_ord, s_code, s_sku, s_order, s_store, s_user, s_request, s_serial, s_at, s_lat, s_lng,
           s_loc, s_price, s_name, s_unit, s_gtin
      FROM u
      JOIN stores st ON st.id = u.store_id
      JOIN skus k ON k.id = u.sku_id
      LEFT JOIN sku_prices p ON p.sku_id = u.sku_id AND p.price_tier_id = st.price_tier_id;
    IF s_ord IS NULL THEN
        RETURN;
    END IF;

    -- Stock: lock the levels in key order, then take each group's units in one guarded update.
    SELECT array_agg(g.location_id ORDER BY g.location_id, g.sku_id), array_agg(g.sku_id ORDER BY g.location_id, g.sku_id),
           array_agg(g.n ORDER BY g.location_id, g.sku_id)
      INTO g_loc, g_sku, g_n
      FROM (SELECT x.location_id, x.sku_id, count(*)::int AS n
              FROM unnest(s_loc, s_sku) AS x(location_id, sku_id) GROUP BY x.location_id, x.sku_id) g;
    PERFORM 1 FROM stock_levels l
      JOIN unnest(g_loc, g_sku) AS g(location_id, sku_id) ON l.location_id = g.location_id AND l.sku_id = g.sku_id
     ORDER BY l.location_id, l.sku_id
       FOR UPDATE OF l;
    WITH upd AS (
        UPDATE stock_levels l SET on_hand = l.on_hand - g.n, updated_at = p_now
          FROM unnest(g_loc, g_sku, g_n) AS g(location_id, sku_id, n)
         WHERE l.location_id = g.location_id AND l.sku_id = g.sku_id AND l.on_hand - g.n >= l.reserved
        RETURNING l.location_id, l.sku_id, l.on_hand
    )
    SELECT array_agg(upd.on_hand ORDER BY upd.location_id, upd.sku_id) INTO g_after FROM upd;
    IF coalesce(cardinality(g_after), 0) <> cardinality(g_loc) THEN
        RAISE EXCEPTION 'scan_sell_many: a stock level would go negative' USING ERRCODE = 'SC001';
    END IF;
    INSERT INTO stock_movements (location_id, sku_id, delta_on_hand, delta_reserved, kind, ref_type, ref_id,
                                 user_id, created_at)
    SELECT x.location_id, x.sku_id, -1, 0, 'sell', 'code', x.code_id::varchar, x.user_id, p_now
      FROM unnest(s_loc, s_sku, s_code, s_user, s_ord) AS x(location_id, sku_id, code_id, user_id, ord)
     ORDER BY x.ord;

    -- The events (EPCIS retail_selling), then the incentive credits that point at them.
    WITH e AS (
        INSERT INTO scan_events (code_id, sku_id, quantity, action, biz_step, disposition, store_id, location_id,
                                 event_time, recorded_at, user_id, order_id, lat, lng, diverted)
        SELECT x.code_id, x.sku_id, 1, 'sell', p_biz_step, p_disposition, x.store_id, x.location_id, x.at, p_now,
               x.user_id, x.order_id, x.lat, x.lng, false
          FROM unnest(s_code, s_sku, s_store, s_loc, s_at, s_user, s_order, s_lat, s_lng, s_ord)
               AS x(code_id, sku_id, store_id, location_id, at, user_id, order_id, lat, lng, ord)
         ORDER BY x.ord
        RETURNING id, code_id
    )
    SELECT array_agg(e.code_id), array_agg(e.id) INTO e_code, e_id FROM e;
    INSERT INTO incentive_credits (store_id, code_id, sku_id, step, points, amount_fen, event_id, created_at)
    SELECT x.store_id, x.code_id, x.sku_id, 'sell', r.points, r.amount_fen, ev.id, p_now
      FROM unnest(s_store, s_code, s_sku) AS x(store_id, code_id, sku_id)
      JOIN unnest(e_code, e_id) AS ev(code_id, id) ON ev.code_id = x.code_id
      JOIN incentive_rules r ON r.sku_id = x.sku_id AND r.step = 'sell' AND r.is_active
    ON CONFLICT (code_id, step) DO NOTHING;

    -- Sell-through: the units go to the inbox the rollups are folded from (app/analytics/rollups.py), so no
    -- rollup row that every store of the city updates is locked while the store waits for its answer.
    INSERT INTO sales_inbox (day, sku_id, store_id, units, amount_fen)
    SELECT (x.at AT TIME ZONE p_tz)::date, x.sku_id, x.store_id, count(*), sum(x.price)
      FROM unnest(s_at, s_sku, s_store, s_price) AS x(at, sku_id, store_id, price)
     GROUP BY 1, 2, 3;

    -- The answers: each unit's stock is what was left right after it (the group's units counted down in order).
    -- Stored under (user, request_id) for replays; a request answered meanwhile by a racing call is a unique
    -- violation that undoes this whole call.
    RETURN QUERY
    WITH a AS (
        SELECT x.ord, x.user_id, x.request_id, json_build_object(
                   'request_id', x.request_id, 'status', 'accepted', 'reason', NULL,
                   'message', format(p_message, x.name, 1, x.unit, x.on_hand),
                   'action', 'sell', 'serial', x.serial, 'code_state', 'sold',
                   'sku', json_build_object('sku_id', x.sku_id, 'name', x.name, 'unit', x.unit, 'gtin', x.gtin),
                   'quantity', 1, 'stock', json_build_object('sku_id', x.sku_id, 'on_hand', x.on_hand),
                   'alerts', json_build_array(), 'event_id', x.event_id, 'store_id', x.store_id) AS answer
          FROM (SELECT y.*, ev.id AS event_id,
                       g.after + g.n - row_number() OVER (PARTITION BY y.location_id, y.sku_id ORDER BY y.ord)
                           AS on_hand
                  FROM unnest(s_ord, s_user, s_request, s_serial, s_code, s_sku, s_store, s_loc, s_name, s_unit,
                              s_gtin)
                       AS y(ord, user_id, request_id, serial, code_id, sku_id, store_id, location_id, name, unit, gtin)
                  JOIN unnest(e_code, e_id) AS ev(code_id, id) ON ev.code_id = y.code_id
                  JOIN unnest(g_loc, g_sku, g_n, g_after) AS g(location_id, sku_id, n, after)
                    ON g.location_id = y.location_id AND g.sku_id = y.sku_id) x
    ), saved AS (
        INSERT INTO scan_requests (user_id, request_id, answer, created_at)
        SELECT a.user_id, a.request_id, a.answer, p_now FROM a
    )
    SELECT a.ord, a.answer::text FROM a ORDER BY a.ord;
END
$fn$;
