DELETE FROM login_attempts;
DELETE FROM orders;
DELETE FROM customers WHERE email LIKE '%@example.com';
DELETE FROM products;
