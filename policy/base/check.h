/*
 * check: always-on checks for programmer errors (BIND's REQUIRE/INSIST), compiled into every
 * build, NDEBUG or not. A failed check prints where it failed and aborts: the state it guards
 * (a query finished twice, a reference count below zero) cannot be carried on from.
 *
 * REQUIRE(cond)  a precondition of the function (what the caller promised);
 * INSIST(cond)   an invariant inside it.
 * Never check anything a packet, a list, a lease or a YAML file contains with these: validate
 * it, report it and keep serving.
 */
#ifndef VETO_CHECK_H
#define VETO_CHECK_H

_Noreturn void check_failed(const char *kind, const char *expr, const char *file, int line,
			    const char *func);

#define REQUIRE(cond)                                                                        \
	((cond) ? (void)0 : check_failed("REQUIRE", #cond, __FILE__, __LINE__, __func__))
#define INSIST(cond)                                                                         \
	((cond) ? (void)0 : check_failed("INSIST", #cond, __FILE__, __LINE__, __func__))

#endif
