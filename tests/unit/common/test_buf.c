/* The bounded buffer: growth, the hard limit, printf, steal and reading a file. */
#include "unit.h"

#include "common/buf.h"

static void
test_add_grows_and_stays_nul_terminated(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 1 << 20);
	assert_string_equal(so_buf_cstr(&b), "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(so_buf_add(&b, "abc", 3), SO_OK);
	assert_int_equal(b.len, 3000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strlen(so_buf_cstr(&b)), 3000);
	assert_memory_equal(b.data + 2997, "abc", 3);
	so_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void
test_hard_limit_refuses_and_leaves_buffer_unchanged(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 10);
	assert_int_equal(so_buf_adds(&b, "0123456789"), SO_OK); /* exactly max is fine */
	assert_int_equal(so_buf_add(&b, "x", 1), SO_ETOOLARGE);
	assert_int_equal(b.len, 10);
	assert_string_equal(so_buf_cstr(&b), "0123456789");
	assert_int_equal(so_buf_printf(&b, "%d", 1), SO_ETOOLARGE);
	assert_string_equal(so_buf_cstr(&b), "0123456789");
	so_buf_free(&b);
}

static void
test_hard_limit_refuses_one_oversized_add(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 8);
	assert_int_equal(so_buf_adds(&b, "123456789"), SO_ETOOLARGE);
	assert_int_equal(b.len, 0);
	/* A length that would overflow len + n must not wrap around the check. */
	assert_int_equal(so_buf_adds(&b, "1234"), SO_OK);
	assert_int_equal(so_buf_add(&b, "x", SIZE_MAX), SO_ETOOLARGE);
	assert_string_equal(so_buf_cstr(&b), "1234");
	so_buf_free(&b);
}

static void
test_printf_appends_formatted_text(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 1024);
	assert_int_equal(so_buf_adds(&b, "n="), SO_OK);
	assert_int_equal(so_buf_printf(&b, "%d %s %05.1f", 42, "x", 3.14159), SO_OK);
	assert_string_equal(so_buf_cstr(&b), "n=42 x 003.1");
	assert_int_equal(b.len, strlen("n=42 x 003.1"));
	so_buf_free(&b);
}

static void
test_printf_fills_exactly_to_the_limit(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 6);
	assert_int_equal(so_buf_printf(&b, "%s", "abcdef"), SO_OK);
	assert_string_equal(so_buf_cstr(&b), "abcdef");
	so_buf_reset(&b);
	assert_int_equal(so_buf_printf(&b, "%s", "abcdefg"), SO_ETOOLARGE);
	assert_int_equal(b.len, 0);
	so_buf_free(&b);
}

static void
test_reset_keeps_memory_and_empties(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 100);
	assert_int_equal(so_buf_adds(&b, "hello"), SO_OK);
	char *mem = b.data;
	so_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, mem);
	assert_string_equal(so_buf_cstr(&b), "");
	assert_int_equal(so_buf_adds(&b, "yo"), SO_OK);
	assert_string_equal(so_buf_cstr(&b), "yo");
	so_buf_free(&b);
}

static void
test_steal_hands_over_the_data_and_resets(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 100);
	assert_int_equal(so_buf_adds(&b, "owned"), SO_OK);
	char *s = so_buf_steal(&b);
	assert_non_null(s);
	assert_string_equal(s, "owned");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	/* The buffer is usable again and does not share memory with what was stolen. */
	assert_int_equal(so_buf_adds(&b, "new"), SO_OK);
	assert_ptr_not_equal(b.data, s);
	assert_string_equal(s, "owned");
	free(s);
	so_buf_free(&b);
}

static void
test_steal_of_empty_buffer_is_null(void **state)
{
	so_buf_t b;
	so_buf_init(&b, 100);
	assert_null(so_buf_steal(&b));
	so_buf_free(&b);
}

/* A temporary file holding `n` bytes 'a'..'z' repeated, positioned at its start. */
static FILE *
file_of(size_t n)
{
	FILE *f = tmpfile();
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fputc('a' + (int)(i % 26), f), 'a' + (int)(i % 26));
	rewind(f);
	return f;
}

static void
test_read_file_reads_past_one_chunk_to_the_end(void **state)
{
	FILE *f = file_of(20000);
	so_buf_t b;
	so_buf_init(&b, 20000);
	assert_int_equal(so_buf_read_file(&b, f), SO_OK);
	assert_int_equal(b.len, 20000);
	assert_int_equal(b.data[0], 'a');
	assert_int_equal(b.data[19999], 'a' + 19999 % 26);
	assert_int_equal(b.data[20000], '\0');
	so_buf_free(&b);
	fclose(f);
}

static void
test_read_file_past_the_limit_is_too_large(void **state)
{
	FILE *f = file_of(20001);
	so_buf_t b;
	so_buf_init(&b, 20000);
	assert_int_equal(so_buf_read_file(&b, f), SO_ETOOLARGE);
	assert_true(b.len <= 20000);
	so_buf_free(&b);
	fclose(f);
}

static void
test_read_file_error_is_eio(void **state)
{
	/* A stream open only for writing cannot be read: fread fails and sets the error. */
	FILE *f = fopen("/dev/null", "w");
	assert_non_null(f);
	so_buf_t b;
	so_buf_init(&b, 100);
	assert_int_equal(so_buf_read_file(&b, f), SO_EIO);
	assert_int_equal(b.len, 0);
	so_buf_free(&b);
	fclose(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_grows_and_stays_nul_terminated),
		cmocka_unit_test(test_hard_limit_refuses_and_leaves_buffer_unchanged),
		cmocka_unit_test(test_hard_limit_refuses_one_oversized_add),
		cmocka_unit_test(test_printf_appends_formatted_text),
		cmocka_unit_test(test_printf_fills_exactly_to_the_limit),
		cmocka_unit_test(test_reset_keeps_memory_and_empties),
		cmocka_unit_test(test_steal_hands_over_the_data_and_resets),
		cmocka_unit_test(test_steal_of_empty_buffer_is_null),
		cmocka_unit_test(test_read_file_reads_past_one_chunk_to_the_end),
		cmocka_unit_test(test_read_file_past_the_limit_is_too_large),
		cmocka_unit_test(test_read_file_error_is_eio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
