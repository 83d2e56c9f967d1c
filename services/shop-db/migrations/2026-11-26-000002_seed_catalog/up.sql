-- The demo catalog and customers. Every seeded customer's password is 'alertlab-demo'
-- (argon2id, m=4096 KiB, t=2, p=1), so the traffic generator and users can log in.

INSERT INTO products (name, description, price, stock_level, low_stock_threshold) VALUES
    ('Aurora Wireless Headphones', 'Over-ear, active noise cancelling, 30 h battery', 149.00, 180, 20),
    ('Nimbus Mechanical Keyboard', 'Tenkeyless, hot-swappable brown switches', 119.50, 140, 15),
    ('Vertex Ergonomic Mouse', 'Vertical grip, 6 buttons, USB-C', 49.90, 260, 25),
    ('Lumen 27" 4K Monitor', 'IPS panel, USB-C 65 W power delivery', 389.00, 60, 8),
    ('Orbit USB-C Hub', '7-in-1: HDMI, SD, 3x USB-A, PD pass-through', 39.99, 320, 30),
    ('Cascade Stainless Water Bottle', '750 ml, double-walled, keeps cold 24 h', 24.95, 400, 40),
    ('Summit Hiking Backpack', '28 l, rain cover, hip belt', 89.00, 120, 12),
    ('Ember Pour-Over Coffee Set', 'Glass dripper, carafe and 100 filters', 34.50, 150, 15),
    ('Granite Cast-Iron Skillet', '26 cm, pre-seasoned', 44.00, 110, 10),
    ('Breeze Desk Fan', 'Quiet 3-speed USB fan', 29.90, 200, 20),
    ('Atlas Standing Desk Mat', 'Anti-fatigue, 90 x 50 cm', 59.00, 90, 10),
    ('Pixel Smart LED Bulb', 'E27, colour, Wi-Fi, 2-pack', 27.50, 300, 30),
    ('Harbor Linen Throw', '130 x 170 cm, washed linen', 69.00, 80, 8),
    ('Quill Fountain Pen', 'Steel nib, converter included', 32.00, 140, 14),
    ('Canvas Weekender Bag', 'Waxed canvas, leather handles', 129.00, 70, 7),
    ('Drift Bluetooth Speaker', 'Waterproof IP67, 12 h playback', 79.99, 160, 16),
    ('Sprout Herb Garden Kit', 'Basil, parsley, chives; self-watering pot', 22.50, 210, 20),
    ('Tempo Running Socks', '3 pairs, cushioned, size M', 18.00, 380, 40),
    ('Glacier Insulated Mug', '350 ml, lid, stainless', 21.00, 330, 30),
    ('Polar Fleece Jacket', 'Recycled fleece, unisex M', 74.00, 95, 10),
    ('Echo Noise Machine', '20 sounds, timer, night light', 45.00, 130, 13),
    ('Kite Phone Stand', 'Aluminium, adjustable angle', 16.50, 350, 35),
    ('Meridian Wall Clock', 'Silent sweep, 30 cm, oak frame', 52.00, 85, 9),
    ('Nova Portable Charger', '20,000 mAh, 2x USB-C PD', 54.99, 240, 24);

INSERT INTO customers (email, name, password_hash) VALUES
    ('alice@example.com', 'Alice Martin', '$argon2id$v=19$m=4096,t=2,p=1$AZevakyViaGrxplGHcaO3g$9OEGhtCkmD98I3OLPPTWuGGmVSGPubmQjeq3xK2mPGw'),
    ('bob@example.com', 'Bob Okafor', '$argon2id$v=19$m=4096,t=2,p=1$GNL/6DKc/JiQWzEV76dcgw$8DWGP2M0KPLUjehnexVDOkwh0r8OY+McmfIbHvVPxXE'),
    ('carol@example.com', 'Carol Nguyen', '$argon2id$v=19$m=4096,t=2,p=1$aDVtxLxWZPeA5ZyeEeLJ1A$lxuig1cWju0HoAvXaO4JFb2To0zcj9M6gBr6HBA1gGg'),
    ('dave@example.com', 'Dave Kowalski', '$argon2id$v=19$m=4096,t=2,p=1$DBaUFT4YQhaFEJMmHYfNQQ$UB9YQaNUcq+DwGpFO/w8wu5FcwndEKks70fvBEgNH8M'),
    ('erin@example.com', 'Erin Schmidt', '$argon2id$v=19$m=4096,t=2,p=1$KGlThbXRqypcYLdAIXlHBw$pvBs703nrJMIwc4JEfzhuz6xzKe8KMrkPfSjOffMxdc'),
    ('frank@example.com', 'Frank Alvarez', '$argon2id$v=19$m=4096,t=2,p=1$2GwddS1uvD/Rp3c2ByQYWw$b09glPdnf4R4Y/NwF0W7IRjReGbr2nLKYyUxQ2CjI38'),
    ('grace@example.com', 'Grace Lindqvist', '$argon2id$v=19$m=4096,t=2,p=1$VbxelZErbAWkp+qem0k09w$sxcZ05nl131/4UKHHOJC1LvWKzcpZtP9bG+IAqrKACo'),
    ('heidi@example.com', 'Heidi Tanaka', '$argon2id$v=19$m=4096,t=2,p=1$7JrNGoh5pu9/BKBxzhXjqQ$69AI8IpjYc8Xl3/YowTCU7M9UN9nsfN18dvSJ1mVqgI'),
    ('ivan@example.com', 'Ivan Petrov', '$argon2id$v=19$m=4096,t=2,p=1$V7sf7dVuWpBqan5mxSRkUA$fpxaO26Pp65wPWIbtXtXAjs3gQe3+qrcDfF1LAPT7Do'),
    ('judy@example.com', 'Judy Mensah', '$argon2id$v=19$m=4096,t=2,p=1$ZYzHK/biNFRQGgWL8TdztA$0AdtuiVFh4RIjoM+WZh574T++gH8Udk4UQa9vGs9uHw');
