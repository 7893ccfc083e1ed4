/* nodesc.so: a loadable module that is not a ferry plugin (no descriptor). */
int nodesc_LTX_something_else(void);
int nodesc_LTX_something_else(void)
{
    return 42;
}
