-- Version 3: as version 2, and the event records its attribution (the store's distributor and that distributor's
-- parent agent at the moment of the sale: `partner_id`, `agent_id`).
--
-- One sell, on PostgreSQL, in one statement's transaction: what `scan_sell_many` does for a batch (see there),
-- written with single-row statements, whose plans cost a fraction of the set-based ones for one item.
-- Returns the answer (JSON text), or NULL when the general path must take the scan: the request was answered
-- by the general path before, or the code is not a plain sell here (duplicate, diversion, unknown, wrong GTIN).
-- The request is recorded on the event (`request_id`, with `on_hand_after`, from which a replay's answer is
-- rebuilt), not in `scan_requests`. A stock level that would go negative fails the call (SQLSTATE SC001); so
-- does a request this path answered before (a unique violation on the event, which undoes the whole call): the
-- caller then takes the general path, which answers either properly. A replay seldom gets that far: its code is
-- sold already.
--
-- Index lookups in nested loops only: the plans are kept for the life of the connection, and a plan made while a
-- table was small (a new database: the first sells find `scan_requests` empty) must not read the whole table, by
-- a scan or a merge join, once it holds millions of rows.
CREATE OR REPLACE FUNCTION scan_sell_one(
    p_user_id bigint, p_request_id varchar, p_serial varchar, p_gtin varchar, p_store_id bigint, p_at timestamptz,
    p_lat float8, p_lng float8, p_now timestamptz, p_tz text, p_biz_step text, p_disposition text, p_message text)
RETURNS text
LANGUAGE plpgsql SET enable_seqscan = off SET enable_mergejoin = off SET enable_hashjoin = off AS $fn$
DECLARE
    v_code bigint; v_sku bigint; v_order bigint; v_loc bigint; v_price bigint; v_name varchar; v_unit varchar;
    v_gtin varchar; v_on_hand int; v_event bigint; v_partner bigint; v_agent bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM scan_requests r WHERE r.user_id = p_user_id AND r.request_id = p_request_id) THEN
        RETURN NULL;
    END IF;
    UPDATE codes c SET state = 'sold', location_id = NULL, sold_at = p_at, updated_at = p_now
     WHERE c.serial = p_serial AND c.kind = 'unit' AND c.state IN ('in_store', 'returned')
       AND c.store_id = p_store_id AND c.destination_store_id = p_store_id
       AND (p_gtin IS NULL OR c.sku_id = (SELECT k.id FROM skus k WHERE k.gtin = p_gtin))
    RETURNING c.id, c.sku_id, c.order_id INTO v_code, v_sku, v_order;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT st.location_id, coalesce(p.price_fen, 0), k.name, k.unit, k.gtin, st.distributor_id, a.id
      INTO v_loc, v_price, v_name, v_unit, v_gtin, v_partner, v_agent
      FROM stores st
      JOIN skus k ON k.id = v_sku
      LEFT JOIN sku_prices p ON p.sku_id = v_sku AND p.price_tier_id = st.price_tier_id
      LEFT JOIN partners d ON d.id = st.distributor_id
      LEFT JOIN partners a ON a.id = d.parent_id AND a.kind = 'agent'
     WHERE st.id = p_store_id;

    UPDATE stock_levels l SET on_hand = l.on_hand - 1, updated_at = p_now
     WHERE l.location_id = v_loc AND l.sku_id = v_sku AND l.on_hand - 1 >= l.reserved
    RETURNING l.on_hand INTO v_on_hand;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scan_sell_one: the stock level would go negative' USING ERRCODE = 'SC001';
    END IF;
    INSERT INTO stock_movements (location_id, sku_id, delta_on_hand, delta_reserved, kind, ref_type, ref_id,
                                 user_id, created_at)
    VALUES (v_loc, v_sku, -1, 0, 'sell', 'code', v_code::varchar, p_user_id, p_now);

    INSERT INTO scan_events (code_id, sku_id, quantity, action, biz_step, disposition, store_id, location_id,
                             event_time, recorded_at, user_id, order_id, lat, lng, diverted, request_id, on_hand_after,
                             partner_id, agent_id)
    VALUES (v_code, v_sku, 1, 'sell', p_biz_step, p_disposition, p_store_id, v_loc, p_at, p_now, p_user_id, v_order,
            p_lat, p_lng, false, p_request_id, v_on_hand, v_partner, v_agent)
    RETURNING id INTO v_event;
    INSERT INTO incentive_credits (store_id, code_id, sku_id, step, points, amount_fen, event_id, created_at)
    SELECT p_store_id, v_code, v_sku, 'sell', r.points, r.amount_fen, v_event, p_now
      FROM incentive_rules r WHERE r.sku_id = v_sku AND r.step = 'sell' AND r.is_active
    ON CONFLICT (code_id, step) DO NOTHING;
    INSERT INTO sales_inbox (day, sku_id, store_id, units, amount_fen)
    VALUES ((p_at AT TIME ZONE p_tz)::date, v_sku, p_store_id, 1, v_price);

    RETURN json_build_object(
        'request_id', p_request_id, 'status', 'accepted', 'reason', NULL,
        'message', format(p_message, v_name, 1, v_unit, v_on_hand),
        'action', 'sell', 'serial', p_serial, 'code_state', 'sold',
        'sku', json_build_object('sku_id', v_sku, 'name', v_name, 'unit', v_unit, 'gtin', v_gtin),
        'quantity', 1, 'stock', json_build_object('sku_id', v_sku, 'on_hand', v_on_hand),
        'alerts', json_build_array(), 'event_id', v_event, 'store_id', p_store_id)::text;
END
$fn$;
