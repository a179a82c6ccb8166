-- Finding people and staff by the start of their name, last name or email (issue 14): B-tree
-- indexes in pattern order, searched as ranges (~>=~ / ~<~) so they hold for generic plans
-- with a bound parameter. The indexes on Drop's `users` are additive objects the console owns
-- (README, "What the console adds to Drop's database"); they change no column and no data.

-- The last word of a name ("Nordmann" in "Kari Nordmann"), lowercase; immutable, so indexable.
create function console.last_word(name text) returns text
    language sql immutable parallel safe
    return lower(substring(name from '([^[:space:]]+)[[:space:]]*$'));

create index staff_name_prefix_idx on console.staff (lower(display_name) text_pattern_ops);
create index staff_email_prefix_idx on console.staff (lower(email) text_pattern_ops);
create index staff_last_name_prefix_idx on console.staff (console.last_word(display_name) text_pattern_ops);

create index users_email_prefix_idx on users (lower(email) text_pattern_ops);
create index users_name_prefix_idx on users (lower(full_name) text_pattern_ops);
create index users_last_name_prefix_idx on users (console.last_word(full_name) text_pattern_ops);
