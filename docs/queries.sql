-- Questions analysts ask of the published tables. Each query is run by tests/test_queries.py against a
-- published database. "Now" is the as-of date of the last run (account_risk.as_of_on), not the wall
-- clock, so the answers are reproducible.
-- Run one: liushui query "$(sed -n '/name: lenders_4_plus_this_quarter/,/;/p' docs/queries.sql)"

-- name: lenders_4_plus_this_quarter
-- Who borrowed from 4 or more platforms (distinct lenders with loan activity) in the current quarter?
WITH now AS (SELECT max(as_of_on) AS as_of_on FROM account_risk)
SELECT t.account_id, count(DISTINCT t.lender_id) AS lenders, list(DISTINCT t.lender_id ORDER BY t.lender_id) AS lender_ids,
       sum(t.amount) FILTER (WHERE t.txn_class = 'loan_disbursement') AS disbursed
FROM transactions t, now
WHERE t.lender_id IS NOT NULL
  AND t.txn_class IN ('loan_disbursement', 'loan_repayment')
  AND t.booked_on >= date_trunc('quarter', now.as_of_on) AND t.booked_on <= now.as_of_on
GROUP BY t.account_id
HAVING count(DISTINCT t.lender_id) >= 4
ORDER BY lenders DESC, t.account_id;

-- name: income_became_volatile
-- Whose income became volatile: INCOME_VOLATILE in the last 3 months but never before that?
-- A flag is an episode of consecutive months: its first month is the first month of its period whose income_cv
-- (account_months) is above the flag's threshold.
WITH now AS (SELECT max(as_of_on) AS as_of_on FROM account_risk),
     volatile AS (SELECT f.account_id, last_day(min(m.month_on)) AS first_flagged_on, max(f.metric_value) AS max_cv
                  FROM risk_flags f
                  JOIN account_months m ON m.account_id = f.account_id AND m.currency = f.currency
                   AND m.month_on BETWEEN f.period_start_on AND f.period_end_on AND m.income_cv > f.threshold
                  WHERE f.flag_code = 'INCOME_VOLATILE' GROUP BY f.account_id)
SELECT v.account_id, v.first_flagged_on, round(v.max_cv, 2) AS max_cv
FROM volatile v, now
WHERE v.first_flagged_on >= date_trunc('month', now.as_of_on) - INTERVAL 3 MONTH
ORDER BY v.first_flagged_on DESC, v.account_id;

-- name: recovered_accounts
-- Which accounts recovered (enough clean months since their last severe flag), and what they had?
SELECT r.account_id, r.months_since_severe, r.last_severe_on, r.score, r.band,
       (SELECT list(DISTINCT f.flag_code ORDER BY f.flag_code) FROM risk_flags f
        WHERE f.account_id = r.account_id AND f.severity = 'high') AS severe_codes_before
FROM account_risk r
WHERE r.recovery_status = 'recovered'
ORDER BY r.months_since_severe DESC, r.account_id;

-- name: recovering_accounts
-- Which accounts are on the way back, and what is still needed?
SELECT account_id, months_since_severe, score, band, active_flags, remediation_en
FROM account_risk WHERE recovery_status = 'recovering'
ORDER BY months_since_severe DESC, account_id;

-- name: riskiest_accounts
-- The 20 highest risk scores with their components.
SELECT account_id, score, band, recovery_status, statement_trust, score_components_json
FROM account_risk ORDER BY score DESC, account_id LIMIT 20;

-- name: debt_burden_over_half
-- Accounts whose loan repayments took more than half of clean income in the last full month.
SELECT account_id, last_full_month_on, round(debt_burden_last, 3) AS debt_burden, last_clean_income
FROM v_account_overview WHERE debt_burden_last > 0.5
ORDER BY debt_burden_last DESC, account_id;

-- name: borrow_to_repay_pairs
-- 以贷养贷: every disbursement followed by a repayment to another lender, with both transactions.
SELECT l.account_id, d.booked_on AS borrowed_on, d.lender_id AS borrowed_from, l.amount_out AS borrowed,
       r.booked_on AS repaid_on, r.lender_id AS repaid_to, l.amount_in AS repaid, l.days_apart
FROM transfer_links l
JOIN transactions d ON d.txn_id = l.out_txn_id
JOIN transactions r ON r.txn_id = l.in_txn_id
WHERE l.link_type = 'borrow_to_repay'
ORDER BY l.account_id, borrowed_on;

-- name: cycles
-- Money cycling across customers of the batch: each chain with its accounts in order.
SELECT chain_id, any_value(chain_length) AS accounts_in_chain, min(amount_out) AS smallest_hop,
       max(amount_out) AS largest_hop, list(account_id ORDER BY out_txn_id) AS accounts
FROM transfer_links WHERE link_type = 'cycle'
GROUP BY chain_id ORDER BY chain_id;

-- name: round_trips_by_counterparty
-- Round trips (刷流水) per account and counterparty.
SELECT account_id, counterparty, count(*) AS trips, sum(amount_out) AS total_out, max(days_apart) AS max_days
FROM transfer_links WHERE link_type = 'round_trip'
GROUP BY ALL ORDER BY trips DESC, account_id, counterparty;

-- name: broken_statements
-- Statements whose running balance breaks: their other figures are less reliable.
SELECT r.account_id, r.statement_trust, count(f.flag_id) AS break_months, max(f.metric_value) AS largest_gap
FROM account_risk r JOIN risk_flags f ON f.account_id = r.account_id AND f.flag_code = 'BALANCE_BREAK'
GROUP BY ALL ORDER BY largest_gap DESC, r.account_id;

-- name: quarantine_reasons
-- What was rejected, by file and reason.
SELECT source_file, reason_code, sum(row_count) AS rows
FROM v_quarantine_by_file GROUP BY ALL ORDER BY rows DESC, source_file, reason_code;

-- name: last_run_health
-- The last run: status, counts and failed expectations.
SELECT run_id, status, mode, as_of_on, dq_failures, stage_seconds_json
FROM v_run_health ORDER BY started_at DESC LIMIT 1;
