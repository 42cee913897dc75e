/* placeholder until chaos/engine.c lands; removed by the engine's author */
typedef int chaos_placeholder;
