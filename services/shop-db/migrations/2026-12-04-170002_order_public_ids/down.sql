DROP INDEX orders_public_id_idx;
ALTER TABLE orders DROP COLUMN public_id;
