-- Version 3: as version 2, and each event records its attribution (the store's distributor and that
-- distributor's parent agent at the moment of the sale: `partner_id`, `agent_id`).
--
-- The common sell, set-based, on PostgreSQL: every item whose code is in the scanning store's stock, was shipped
-- to that store, matches the scanned GTIN and whose request was not answered before is sold in one statement's
-- transaction: the code, the stock level (guarded, never negative) and one ledger row per unit, the scan event
-- (which records the request and the stock left, for replays), the incentive credit and the sales for the rollups.
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
-- the work of a small batch. Index lookups in nested loops only: a plan is kept for the life of the connection,
-- and one made while a table was small (a new database: `scan_requests` empty) must not read the whole table,
-- by a scan or a merge join, once it holds millions of rows (measured: 5x the CPU per sell within a minute).
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET enable_mergejoin = off
SET enable_hashjoin = off
AS $fn$
DECLARE
    -- One entry per sold item.
    s_ord int[]; s_code bigint[]; s_sku bigint[]; s_order bigint[]; s_store bigint[]; s_user bigint[];
    s_request varchar[]; s_serial varchar[]; s_at timestamptz[]; s_lat float8[]; s_lng float8[];
    s_loc bigint[]; s_price bigint[];
    s_name varchar[]; s_unit varchar[]; s_gtin varchar[]; s_event bigint[]; s_after int[];
    -- One entry per (location, SKU), in key order.
    g_loc bigint[]; g_sku bigint[]; g_n int[]; g_after int[];
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
    -- One row per sold item; every array below is filled from the same rows, so position n is one item in all.
    -- The event ids are taken here, so the event rows and everything pointing at them line up by position.
    SELECT array_agg(u.ord), array_agg(u.code_id), array_agg(u.sku_id), array_agg(u.order_id), array_agg(u.store_id),
           array_agg(u.user_id), array_agg(u.request_id), array_agg(u.serial), array_agg(u.at), array_agg(u.lat),
           array_agg(u.lng), array_agg(st.location_id), array_agg(coalesce(p.price_fen, 0)), array_agg(k.name),
           array_agg(k.unit), array_agg(k.gtin), array_agg(nextval('scan_events_id_seq'))
      INTO s_ord, s_code, s_sku, s_order, s_store, s_user, s_request, s_serial, s_at, s_lat, s_lng,
           s_loc, s_price, s_name, s_unit, s_gtin, s_event
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
    -- Each unit's stock is what was left right after it: its group's units counted down in input order.
    SELECT array_agg(x.on_hand ORDER BY x.n) INTO s_after
      FROM (SELECT y.n, g.after + g.cnt - row_number() OVER (PARTITION BY y.location_id, y.sku_id ORDER BY y.ord)
                       AS on_hand
              FROM unnest(s_loc, s_sku, s_ord) WITH ORDINALITY AS y(location_id, sku_id, ord, n)
              JOIN unnest(g_loc, g_sku, g_n, g_after) AS g(location_id, sku_id, cnt, after)
                ON g.location_id = y.location_id AND g.sku_id = y.sku_id) x;
    INSERT INTO stock_movements (location_id, sku_id, delta_on_hand, delta_reserved, kind, ref_type, ref_id,
                                 user_id, created_at)
    SELECT x.location_id, x.sku_id, -1, 0, 'sell', 'code', x.code_id::varchar, x.user_id, p_now
      FROM unnest(s_loc, s_sku, s_code, s_user, s_ord) AS x(location_id, sku_id, code_id, user_id, ord)
     ORDER BY x.ord;

    -- The events (EPCIS retail_selling), then the incentive credits that point at them.
    -- Each event records its client request and the stock it left: a replay's answer is rebuilt from it. A request
    -- this path answered before is a unique violation here, which undoes the whole call.
    INSERT INTO scan_events (id, code_id, sku_id, quantity, action, biz_step, disposition, store_id, location_id,
                             event_time, recorded_at, user_id, order_id, lat, lng, diverted, request_id, on_hand_after,
                             partner_id, agent_id)
    SELECT x.id, x.code_id, x.sku_id, 1, 'sell', p_biz_step, p_disposition, x.store_id, x.location_id, x.at, p_now,
           x.user_id, x.order_id, x.lat, x.lng, false, x.request_id, x.on_hand_after, st.distributor_id, a.id
      FROM unnest(s_event, s_code, s_sku, s_store, s_loc, s_at, s_user, s_order, s_lat, s_lng, s_request, s_after)
           AS x(id, code_id, sku_id, store_id, location_id, at, user_id, order_id, lat, lng, request_id, on_hand_after)
      JOIN stores st ON st.id = x.store_id
      LEFT JOIN partners d ON d.id = st.distributor_id
      LEFT JOIN partners a ON a.id = d.parent_id AND a.kind = 'agent';
    INSERT INTO incentive_credits (store_id, code_id, sku_id, step, points, amount_fen, event_id, created_at)
    SELECT x.store_id, x.code_id, x.sku_id, 'sell', r.points, r.amount_fen, x.event_id, p_now
      FROM unnest(s_store, s_code, s_sku, s_event) AS x(store_id, code_id, sku_id, event_id)
      JOIN incentive_rules r ON r.sku_id = x.sku_id AND r.step = 'sell' AND r.is_active
    ON CONFLICT (code_id, step) DO NOTHING;

    -- Sell-through: the units go to the inbox the rollups are folded from (app/analytics/rollups.py), so no
    -- rollup row that every store of the city updates is locked while the store waits for its answer.
    INSERT INTO sales_inbox (day, sku_id, store_id, units, amount_fen)
    SELECT (x.at AT TIME ZONE p_tz)::date, x.sku_id, x.store_id, count(*), sum(x.price)
      FROM unnest(s_at, s_sku, s_store, s_price) AS x(at, sku_id, store_id, price)
     GROUP BY 1, 2, 3;

    RETURN QUERY
    SELECT y.ord, json_build_object(
               'request_id', y.request_id, 'status', 'accepted', 'reason', NULL,
               'message', format(p_message, y.name, 1, y.unit, y.on_hand),
               'action', 'sell', 'serial', y.serial, 'code_state', 'sold',
               'sku', json_build_object('sku_id', y.sku_id, 'name', y.name, 'unit', y.unit, 'gtin', y.gtin),
               'quantity', 1, 'stock', json_build_object('sku_id', y.sku_id, 'on_hand', y.on_hand),
               'alerts', json_build_array(), 'event_id', y.event_id, 'store_id', y.store_id)::text
      FROM unnest(s_ord, s_request, s_serial, s_sku, s_store, s_name, s_unit, s_gtin, s_event, s_after)
           AS y(ord, request_id, serial, sku_id, store_id, name, unit, gtin, event_id, on_hand)
     ORDER BY y.ord;
END
$fn$;
