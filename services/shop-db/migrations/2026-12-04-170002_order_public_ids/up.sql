-- The id clients see: a random (version 4) UUID, so nobody can walk through other people's
-- orders by counting. The serial `id` stays internal (payment references, logs, joins).
-- The volatile default gives every existing order its own value.
ALTER TABLE orders ADD COLUMN public_id UUID NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX orders_public_id_idx ON orders (public_id);
